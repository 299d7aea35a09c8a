package oci

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestSecurityOptsDevices checks the spec of the security options and
// devices: no_new_privs as asked, no filter when unconfined, a profile's
// filter, a host device node with its cgroup rule, and the refusals.
func TestSecurityOptsDevices(t *testing.T) {
	spec := func(cfg api.ContainerConfig) (*specs.Spec, error) {
		cfg.Image = "x"
		return Spec(Input{ID: "x", Rootfs: testRootfs(t), Image: busyboxImage(), Config: cfg})
	}
	s, err := spec(api.ContainerConfig{NoNewPrivileges: new(false), Seccomp: api.SeccompUnconfined,
		Devices: []api.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/nothing", CgroupPermissions: "rw"}}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.NoNewPrivileges || s.Linux.Seccomp != nil {
		t.Errorf("noNewPrivileges %v, seccomp %v: want both off", s.Process.NoNewPrivileges, s.Linux.Seccomp)
	}
	if d := s.Linux.Devices; len(d) != 1 || d[0].Path != "/dev/nothing" || d[0].Type != "c" || d[0].Major != 1 || d[0].Minor != 3 {
		t.Errorf("devices = %+v, want /dev/nothing as c 1:3", d)
	}
	last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
	if !last.Allow || last.Type != "c" || *last.Major != 1 || *last.Minor != 3 || last.Access != "rw" {
		t.Errorf("last device rule = %+v, want allow c 1:3 rw", last)
	}
	s, err = spec(api.ContainerConfig{Seccomp: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if sc := s.Linux.Seccomp; sc == nil || sc.DefaultAction != specs.ActAllow || len(sc.Syscalls) != 1 || !s.Process.NoNewPrivileges {
		t.Errorf("seccomp = %+v, noNewPrivileges %v: want the profile's filter and no_new_privs on", sc, s.Process.NoNewPrivileges)
	}
	for _, tc := range []struct {
		cfg  api.ContainerConfig
		want string
	}{
		{api.ContainerConfig{Seccomp: `{"defaultAction":"SCMP_ACT_SOMETIMES"}`}, "SCMP_ACT_SOMETIMES"},
		{api.ContainerConfig{Seccomp: `{"defaultAction":`}, "seccomp profile"},
		{api.ContainerConfig{Devices: []api.DeviceMapping{{PathOnHost: "/etc/passwd"}}}, "not a device node"},
		{api.ContainerConfig{Devices: []api.DeviceMapping{{PathOnHost: "/dev/skiff-none"}}}, "no such device"},
	} {
		if _, err := spec(tc.cfg); !errors.Is(err, errdefs.ErrInvalid) && !errors.Is(err, errdefs.ErrNotFound) || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Spec(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

// TestRootfsPropagation checks that a shared bind mount makes the root
// rshared and that other mounts leave runc's default.
func TestRootfsPropagation(t *testing.T) {
	if got := rootfsPropagation([]specs.Mount{{Options: []string{"rbind", "rshared"}}}); got != "rshared" {
		t.Errorf("rshared mount: %q", got)
	}
	if got := rootfsPropagation([]specs.Mount{{Options: []string{"rbind", "rslave"}}}); got != "" {
		t.Errorf("rslave mount: %q", got)
	}
}
