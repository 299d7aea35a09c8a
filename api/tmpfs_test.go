package api

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestParseTmpfs(t *testing.T) {
	for _, tc := range []struct {
		name, target, opts string
		want               Mount
	}{
		{"bare", "/run", "", Mount{Type: MountTmpfs, Target: "/run"}},
		{"size and mode", "/run", "size=64m,mode=0755", Mount{Type: MountTmpfs, Target: "/run", TmpfsSize: 64 << 20, TmpfsMode: 0o755}},
		{"sticky, ro, docker's defaults", "/t", "rw,noexec,nosuid,nodev,mode=1777,ro", Mount{Type: MountTmpfs, Target: "/t", TmpfsMode: 0o1777, ReadOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTmpfs(tc.target, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, target, opts, want string }{
		{"relative", "run", "", "absolute path"},
		{"bad size", "/t", "size=lots", `size "lots"`},
		{"zero size", "/t", "size=0", `size "0"`},
		{"bad mode", "/t", "mode=rwx", `mode "rwx"`},
		{"mode too wide", "/t", "mode=17777", `mode "17777"`},
		{"exec", "/t", "exec", `option "exec"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTmpfs(tc.target, tc.opts)
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid mentioning %s", err, tc.want)
			}
		})
	}
}
