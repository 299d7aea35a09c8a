// Command sysprobe makes system calls that skiff's default seccomp
// profile refuses and prints how each one ended, so a test can tell a
// seccomp refusal from a missing capability or a kernel without the call.
//
// Usage: sysprobe CALL... where CALL is keyctl or add_key. For each call
// it prints "CALL: allowed" or "CALL: refused: ERRNO (message)", then the
// Seccomp line of /proc/self/status. It exits 0 when every call was
// allowed, 1 otherwise, 2 on bad usage.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// probes are the calls sysprobe knows. Both are refused by the default
// profile whatever the container's capabilities (they are in no
// capability-conditional rule of it) and work as root without one.
var probes = map[string]func() error{
	// keyctl reads the id of the session keyring (runc gives each
	// container one of its own).
	"keyctl": func() error {
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
		return err
	},
	// add_key adds a user key to the process keyring.
	"add_key": func() error {
		_, err := unix.AddKey("user", "sysprobe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		return err
	},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sysprobe keyctl|add_key...")
		os.Exit(2)
	}
	code := 0
	for _, name := range os.Args[1:] {
		probe, ok := probes[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "sysprobe: unknown call %q: use keyctl or add_key\n", name)
			os.Exit(2)
		}
		if err := probe(); err != nil {
			fmt.Printf("%s: refused: %s\n", name, describe(err))
			code = 1
		} else {
			fmt.Printf("%s: allowed\n", name)
		}
	}
	fmt.Println(seccompLine())
	os.Exit(code)
}

// describe names err's errno ("EPERM (operation not permitted)").
func describe(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno) + " (" + errno.Error() + ")"
	}
	return err.Error()
}

// seccompLine returns the Seccomp line of /proc/self/status ("Seccomp:
// 2" under a filter, 0 without).
func seccompLine() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "Seccomp: unknown (" + err.Error() + ")"
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("Seccomp:")) {
			return string(bytes.Join(bytes.Fields(l), []byte(" ")))
		}
	}
	return "Seccomp: unknown"
}
