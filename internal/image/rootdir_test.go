package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/image/imagetest"
)

// rootEnt is a "./" entry; a zero mode means the layer has none.
type rootEnt struct {
	mode     int64
	uid, gid int
	mtime    time.Time
}

// layerTar returns a layer holding a root entry (unless r.mode is 0), the
// file name and the device nodes devs.
func layerTar(t *testing.T, r rootEnt, name string, devs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if r.mode != 0 {
		write(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: r.mode, Uid: r.uid, Gid: r.gid, ModTime: r.mtime}, "")
	}
	write(&tar.Header{Typeflag: tar.TypeReg, Name: "./" + name, Mode: 0o644, ModTime: imagetest.Created}, name)
	for i, d := range devs {
		write(&tar.Header{Typeflag: tar.TypeChar, Name: "./" + d, Mode: 0o666, Devmajor: 1, Devminor: int64(3 + i), ModTime: imagetest.Created}, "")
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestResolveImageRoot checks that the top layer directory, whose owner,
// mode and times a container's root takes, holds those of the root entry
// of the lowest layer that has one, or 0755 0:0.
func TestResolveImageRoot(t *testing.T) {
	t1 := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	t2 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	base := rootEnt{mode: 0o755, mtime: t1}
	tests := []struct {
		name   string
		layers []rootEnt // bottom first
		want   rootEnt   // mtime zero: not checked
	}{
		{name: "no root entry", layers: []rootEnt{{}}, want: rootEnt{mode: 0o755}},
		{name: "no root entry in any layer", layers: []rootEnt{{}, {}, {}}, want: rootEnt{mode: 0o755}},
		{name: "the bottom layer's", layers: []rootEnt{{mode: 0o1751, uid: 7, gid: 8, mtime: t1}}, want: rootEnt{mode: 0o1751, uid: 7, gid: 8, mtime: t1}},
		{name: "kept by layers without one", layers: []rootEnt{base, {}, {}}, want: base},
		// A later layer's "./" often describes a temporary build directory
		// (mode 0700): it must not lock non-root users out of /.
		{name: "the lowest wins", layers: []rootEnt{base, {mode: 0o700, uid: 1000, gid: 1000, mtime: t2}}, want: base},
		{name: "the lowest that has one", layers: []rootEnt{{}, {mode: 0o750, uid: 5, gid: 5, mtime: t2}, {mode: 0o700, mtime: t1}, {}},
			want: rootEnt{mode: 0o750, uid: 5, gid: 5, mtime: t2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			var layers []v1.Layer
			for i, r := range tt.layers {
				layers = append(layers, imagetest.LayerFromTar(t, compression.GZip, layerTar(t, r, fmt.Sprintf("f%d", i))))
			}
			save(t, s, imagetest.Image(t, v1.Config{}, layers...), "rooted")
			res, err := s.Resolve(context.Background(), "rooted")
			if err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(res.Layers[0], &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&0o7777 != uint32(tt.want.mode) || int(st.Uid) != tt.want.uid || int(st.Gid) != tt.want.gid {
				t.Errorf("the top layer's root is %04o %d:%d, want %04o %d:%d", st.Mode&0o7777, st.Uid, st.Gid, tt.want.mode, tt.want.uid, tt.want.gid)
			}
			if !tt.want.mtime.IsZero() && st.Mtim.Sec != tt.want.mtime.Unix() {
				t.Errorf("the top layer's root was modified at %s, want %s", time.Unix(st.Mtim.Unix()).UTC(), tt.want.mtime)
			}
			for i := range tt.layers {
				if _, err := os.Stat(filepath.Join(res.Layers[len(tt.layers)-1-i], fmt.Sprintf("f%d", i))); err != nil {
					t.Errorf("layer %d lacks its file: %v", i, err)
				}
			}
		})
	}
}

// TestResolveSkipsDevices checks that a layer's device nodes are left out
// with one warning for the layer, and that the image still unpacks.
func TestResolveSkipsDevices(t *testing.T) {
	var logs bytes.Buffer
	root := t.TempDir()
	s, err := Open(root, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	layer := imagetest.LayerFromTar(t, compression.GZip, layerTar(t, rootEnt{mode: 0o755}, "etc-hostname", "dev-console", "dev-null", "dev-zero"))
	save(t, s, imagetest.Image(t, v1.Config{}, layer), "devices")
	res, err := s.Resolve(context.Background(), "devices")
	if err != nil {
		t.Fatalf("an image with device nodes does not resolve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(res.Layers[0], "etc-hostname")); err != nil {
		t.Errorf("the layer's file is missing: %v", err)
	}
	for _, d := range []string{"dev-console", "dev-null", "dev-zero"} {
		if _, err := os.Lstat(filepath.Join(res.Layers[0], d)); err == nil {
			t.Errorf("the device node %s was created", d)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "device nodes"); n != 1 || !strings.Contains(out, "devices=3") || !strings.Contains(out, "first=dev-console") {
		t.Errorf("want one warning naming 3 device nodes and the first, got %d:\n%s", n, out)
	}
}
