package oci

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestAddInit checks that the init binary is bind-mounted read-only at
// /dev/init and runs the process args as its command.
func TestAddInit(t *testing.T) {
	spec := &specs.Spec{Process: &specs.Process{Args: []string{"sleep", "100"}}}
	if err := AddInit(spec, "/usr/local/bin/skiff"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/dev/init", "init-process", "--", "sleep", "100"}; !reflect.DeepEqual(spec.Process.Args, want) {
		t.Errorf("args = %q, want %q", spec.Process.Args, want)
	}
	if len(spec.Mounts) != 1 || spec.Mounts[0].Source != "/usr/local/bin/skiff" || spec.Mounts[0].Destination != "/dev/init" ||
		!reflect.DeepEqual(spec.Mounts[0].Options, []string{"bind", "ro", "nosuid", "nodev"}) {
		t.Errorf("mounts = %+v", spec.Mounts)
	}
	if err := AddInit(spec, "skiff"); err == nil {
		t.Error("a relative binary path was accepted")
	}
}
