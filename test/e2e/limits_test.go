package e2e

import (
	"strings"
	"testing"
)

// TestRunUlimit checks that --ulimit nofile sets the process's soft and
// hard limits in place of the default.
func TestRunUlimit(t *testing.T) {
	out := must(t, env.daemon, "run", "--rm", "--ulimit", "nofile=1024:2048", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn")
	if out != "1024\n2048\n" {
		t.Errorf("ulimit -n; ulimit -Hn printed %q, want 1024 and 2048", out)
	}
}

// TestRunSysctl checks that a namespaced --sysctl is set in the
// container's /proc/sys.
func TestRunSysctl(t *testing.T) {
	out := must(t, env.daemon, "run", "--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
		"busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if strings.TrimSpace(out) != "80" {
		t.Errorf("ip_unprivileged_port_start is %q, want 80", out)
	}
}

// TestRunLimitsInvalid checks that a sysctl that is not namespaced, a
// net.* sysctl on the host's network and a ulimit above the host's hard
// limit are refused, naming what is wrong, and create nothing.
func TestRunLimitsInvalid(t *testing.T) {
	for _, tc := range []struct {
		args, wants []string
	}{
		{[]string{"--sysctl", "vm.swappiness=10"}, []string{`"vm.swappiness"`, "not namespaced"}},
		{[]string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, []string{`"net.ipv4.ip_forward"`, "--network host"}},
		{[]string{"--ulimit", "nofiles=10"}, []string{`unknown ulimit "nofiles"`}},
		{[]string{"--ulimit", "nofile=1024:1099511627776"}, []string{"nofile=1099511627776", "host's hard limit"}},
	} {
		r := fails(t, env.daemon, tc.wants, append(append([]string{"run", "--rm", "--name", "limits-bad"}, tc.args...), "busybox", "true")...)
		if r.Code != 125 {
			t.Errorf("%v: exit %d, want 125", tc.args, r.Code)
		}
	}
	if out := must(t, env.daemon, "ps", "-a"); strings.Contains(out, "limits-bad") {
		t.Errorf("a refused run made a container:\n%s", out)
	}
}
