package oci

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// StopSignal returns the signal that asks a container to stop: the
// user's override, else the image's StopSignal, else SIGTERM. Names
// ("SIGINT", "INT", "sigquit") and numbers ("9") are accepted.
func StopSignal(imageSignal, userSignal string) (syscall.Signal, error) {
	s := userSignal
	if s == "" {
		s = imageSignal
	}
	if s == "" {
		return syscall.SIGTERM, nil
	}
	return ParseSignal(s)
}

// ParseSignal parses a signal name or number; an unknown one is
// ErrInvalid.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalid("signal %q is out of range 1-64", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.Invalid("unknown signal %q: use a name such as SIGTERM or a number", s)
}
