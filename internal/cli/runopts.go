package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// registerMore adds --mount, --security-opt, --device, --log-driver,
// --log-opt and -a/--attach.
func (f *runFlags) registerMore(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.mounts, "mount", nil, "mount a volume, host path or tmpfs: type=bind|volume|tmpfs,source=..,target=..[,readonly][,bind-propagation=..][,volume-nocopy][,tmpfs-size=..][,tmpfs-mode=..] (repeatable)")
	fl.StringArrayVar(&f.securityOpts, "security-opt", nil, "a security option: no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json, apparmor=unconfined or label=disable (repeatable)")
	fl.StringArrayVar(&f.devices, "device", nil, "put a host device into the container: /dev/HOST[:/dev/CONTAINER][:rwm] (repeatable)")
	fl.StringVar(&f.logDriver, "log-driver", "", "log driver: json-file, local or none, docker's names for skiff's own log")
	fl.StringArrayVar(&f.logOpts, "log-opt", nil, "a log option: max-size=10m (rotate the log at this size) or max-file=3 (files kept) (repeatable)")
	fl.StringArrayVarP(&f.attach, "attach", "a", nil, "attach only these streams: stdin, stdout or stderr (repeatable; default stdout and stderr, and stdin with -i)")
}

// more sets cfg's mounts, security options, devices and log from the
// flags registerMore adds.
func (f *runFlags) more(cfg *api.ContainerConfig) error {
	for _, s := range f.mounts {
		m, err := parseMountFlag(s)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
	for _, s := range f.securityOpts {
		if err := parseSecurityOptFlag(cfg, s); err != nil {
			return err
		}
	}
	for _, s := range f.devices {
		d, err := api.ParseDevice(s)
		if err != nil {
			return err
		}
		cfg.Devices = append(cfg.Devices, d)
	}
	if err := api.CheckLogDriver(f.logDriver); err != nil {
		return fmt.Errorf("--log-driver: %w", err)
	}
	cfg.Log.Driver = f.logDriver
	for _, s := range f.logOpts {
		if err := api.ParseLogOpt(&cfg.Log, s); err != nil {
			return fmt.Errorf("--log-opt: %w", err)
		}
	}
	_, err := f.attachStreams()
	return err
}

// parseSecurityOptFlag applies one --security-opt, reading the file of
// seccomp=FILE (anything but unconfined) and sending its content, as
// docker's CLI does.
func parseSecurityOptFlag(cfg *api.ContainerConfig, s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		k, v, ok = strings.Cut(s, ":")
	}
	if ok && k == "seccomp" && v != api.SeccompUnconfined {
		data, err := os.ReadFile(v)
		if err != nil {
			return errdefs.Invalid("--security-opt seccomp=%s: read the profile: %w", v, err)
		}
		s = "seccomp=" + string(data)
	}
	return api.ParseSecurityOpt(cfg, s)
}

// streams says which of a run's streams are attached.
type streams struct{ stdin, stdout, stderr bool }

// attachStreams returns the streams -a names, or docker's default:
// stdout and stderr, and stdin with -i.
func (f *runFlags) attachStreams() (streams, error) {
	if len(f.attach) == 0 {
		return streams{stdin: f.interactive, stdout: true, stderr: true}, nil
	}
	var s streams
	for _, a := range f.attach {
		switch strings.ToLower(a) {
		case "stdin":
			s.stdin = true
		case "stdout":
			s.stdout = true
		case "stderr":
			s.stderr = true
		default:
			return streams{}, errdefs.Invalid("invalid -a/--attach %q: use stdin, stdout or stderr", a)
		}
	}
	return s, nil
}

// checkAttach refuses -a with -d, and -a stdin without -i.
func checkAttach(f *runFlags, detach bool) error {
	if len(f.attach) == 0 {
		return nil
	}
	if detach {
		return errdefs.Invalid("conflicting options: -a/--attach and -d/--detach: a detached container has no attached streams")
	}
	if s, _ := f.attachStreams(); s.stdin && !f.interactive {
		return errdefs.Invalid("-a stdin needs -i: the container's stdin is open only with -i")
	}
	return nil
}

// attachedWriters are stdout and stderr, each io.Discard unless attached.
func attachedWriters(s streams, stdout, stderr io.Writer) (io.Writer, io.Writer) {
	if !s.stdout {
		stdout = io.Discard
	}
	if !s.stderr {
		stderr = io.Discard
	}
	return stdout, stderr
}
