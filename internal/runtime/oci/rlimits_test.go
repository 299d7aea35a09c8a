package oci

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestSpecUlimitsSysctls checks that a nofile ulimit replaces the default
// RLIMIT_NOFILE, other ulimits are added, and sysctls reach linux.sysctl.
func TestSpecUlimitsSysctls(t *testing.T) {
	s, err := Spec(Input{ID: "lim", Rootfs: testRootfs(t), Image: busyboxImage(), Config: api.ContainerConfig{
		Ulimits: []api.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: -1, Hard: -1}},
		Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rl := s.Process.Rlimits
	if len(rl) != 2 || rl[0].Type != "RLIMIT_NOFILE" || rl[0].Soft != 1024 || rl[0].Hard != 2048 ||
		rl[1].Type != "RLIMIT_CORE" || rl[1].Soft != unix.RLIM_INFINITY || rl[1].Hard != unix.RLIM_INFINITY {
		t.Errorf("rlimits %+v", rl)
	}
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "80" || len(s.Linux.Sysctl) != 1 {
		t.Errorf("sysctl %v", s.Linux.Sysctl)
	}
	s, err = Spec(Input{ID: "lim", Rootfs: testRootfs(t), Image: busyboxImage(),
		Config: api.ContainerConfig{Ulimits: []api.Ulimit{{Name: "nproc", Soft: 10, Hard: 20}}}})
	if err != nil || len(s.Process.Rlimits) != 2 || s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Hard != MaxNofile {
		t.Errorf("default nofile kept beside nproc: %+v, %v", s.Process.Rlimits, err)
	}
}

// TestRlimitsAboveHost checks that a ulimit above the host's hard limit
// is refused, naming the limit, the value and the host's limit.
func TestRlimitsAboveHost(t *testing.T) {
	var host unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &host); err != nil {
		t.Fatal(err)
	}
	if host.Max == unix.RLIM_INFINITY {
		t.Fatalf("host RLIMIT_NOFILE is unlimited: nothing is above it")
	}
	want := []string{"nofile=" + itoa(host.Max+1), "host's hard limit " + itoa(host.Max)}
	_, err := Rlimits([]api.Ulimit{{Name: "nofile", Soft: 1, Hard: int64(host.Max + 1)}}, true)
	if err == nil || !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want[0]) || !strings.Contains(err.Error(), want[1]) {
		t.Errorf("got %v, want an invalid-input error with %q", err, want)
	}
	if _, err := Rlimits([]api.Ulimit{{Name: "nofile", Soft: 1, Hard: int64(host.Max)}}, true); err != nil {
		t.Errorf("the host's own limit refused: %v", err)
	}
}

func itoa(v uint64) string { return rlimString(v) }
