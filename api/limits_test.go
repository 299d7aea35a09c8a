package api

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestParseUlimit(t *testing.T) {
	for in, want := range map[string]Ulimit{
		"nofile=1024:2048":     {"nofile", 1024, 2048},
		"nproc=512":            {"nproc", 512, 512},
		"core=unlimited":       {"core", -1, -1},
		"memlock=-1:-1":        {"memlock", -1, -1},
		"stack=8192:unlimited": {"stack", 8192, -1},
	} {
		if got, err := ParseUlimit(in); err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"nofile":              "use NAME=SOFT[:HARD]",
		"nofile=a":            "use NAME=SOFT[:HARD]",
		"nofile=-5":           "use NAME=SOFT[:HARD]",
		"files=10":            `unknown ulimit "files"`,
		"nofile=2048:1024":    "soft limit 2048 is above the hard limit 1024",
		"nofile=unlimited:10": "soft limit -1 is above",
	} {
		_, err := ParseUlimit(in)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseUlimit(%q): got %v, want an invalid-input error with %q", in, err, want)
		}
	}
}

func TestCheckLimitsSysctls(t *testing.T) {
	ok := ContainerConfig{Sysctls: map[string]string{"kernel.msgmax": "1", "kernel.sem": "1 2 3 4", "kernel.shmmax": "1",
		"fs.mqueue.msg_max": "10", "net.ipv4.ip_forward": "1"}, Network: NetworkNone}
	if err := CheckLimits(&ok); err != nil {
		t.Fatalf("namespaced sysctls refused: %v", err)
	}
	for _, tc := range []struct {
		c    ContainerConfig
		want string
	}{
		{ContainerConfig{Sysctls: map[string]string{"vm.swappiness": "1"}}, `sysctl "vm.swappiness" is refused: it is not namespaced`},
		{ContainerConfig{Sysctls: map[string]string{"kernel.hostname": "x"}}, `"kernel.hostname" is refused`},
		{ContainerConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}, Network: NetworkHost}, `with --network host`},
		{ContainerConfig{Sysctls: map[string]string{"net/ipv4": "1"}}, `invalid sysctl "net/ipv4"`},
		{ContainerConfig{Ulimits: []Ulimit{{"nofile", 1, 2}, {"nofile", 1, 2}}}, "ulimit nofile is given twice"},
	} {
		err := CheckLimits(&tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%+v: got %v, want an invalid-input error with %q", tc.c, err, tc.want)
		}
	}
	if _, _, err := ParseSysctl("net.ipv4.ip_forward"); err == nil || !strings.Contains(err.Error(), "use KEY=VALUE") {
		t.Errorf("sysctl without a value: %v", err)
	}
}
