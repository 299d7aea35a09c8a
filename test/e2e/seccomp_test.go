package e2e

import (
	"strings"
	"testing"
)

// TestSeccompRefusesBlockedSyscalls checks that the default seccomp
// profile does refuse calls it blocks, not only that a filter is on:
// keyctl and add_key fail with EPERM under the default profile (also
// with every capability added, so the refusal is seccomp's and not a
// missing capability's), and succeed in a privileged container, which
// runs without a filter.
func TestSeccompRefusesBlockedSyscalls(t *testing.T) {
	d := env.daemon
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"default", nil},
		{"all capabilities", []string{"--cap-add", "ALL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.flags...), "sysprobe", "keyctl", "add_key")
			r := d.Run("", args...)
			for _, want := range []string{
				"keyctl: refused: EPERM (operation not permitted)",
				"add_key: refused: EPERM (operation not permitted)",
				"Seccomp: 2",
			} {
				if !strings.Contains(r.Stdout, want) {
					t.Errorf("want %q in the output:\n%s", want, r)
				}
			}
			if r.Code != 1 {
				t.Errorf("exit code %d, want 1 (a call refused):\n%s", r.Code, r)
			}
		})
	}
	t.Run("privileged", func(t *testing.T) {
		r := d.Run("", "run", "--rm", "--privileged", "sysprobe", "keyctl", "add_key")
		for _, want := range []string{"keyctl: allowed", "add_key: allowed", "Seccomp: 0"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q in the output:\n%s", want, r)
			}
		}
		if r.Code != 0 {
			t.Errorf("exit code %d, want 0:\n%s", r.Code, r)
		}
	})
}
