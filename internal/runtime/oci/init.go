package oci

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/initproc"
)

// AddInit makes spec run the init of --init as PID 1: binary (skiff's
// own executable, an absolute path) is bind-mounted read-only at
// initproc.Path and the process args become
// initproc.Path initproc.Subcommand -- args....
func AddInit(spec *specs.Spec, binary string) error {
	if !filepath.IsAbs(binary) {
		return errdefs.Invalid("init binary %q is not an absolute path", binary)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: initproc.Path, Type: "bind", Source: binary,
		Options: []string{"bind", "ro", "nosuid", "nodev"},
	})
	spec.Process.Args = append([]string{initproc.Path, initproc.Subcommand, "--"}, spec.Process.Args...)
	return nil
}
