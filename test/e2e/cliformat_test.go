package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPsFilterFormat checks ps --filter (label, name, status, exited,
// ancestor) and --format templates, table and json, against real
// containers.
func TestPsFilterFormat(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "fmt-a", "-l", "tier=web", "-p", "127.0.0.1::80", "busybox", "sleep", "60")
	d.Run("", "run", "--name", "fmt-b", "-l", "tier=db", "busybox", "sh", "-c", "exit 3")
	t.Cleanup(func() { d.Run("", "rm", "-f", "fmt-a", "fmt-b") })

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "label=tier=web"}, "fmt-a\n"},
		{[]string{"--filter", "label=tier", "--filter", "name=fmt-"}, "fmt-a\n"}, // running only without -a
		{[]string{"-a", "--filter", "label=tier", "--filter", "name=fmt-"}, "fmt-a\nfmt-b\n"},
		{[]string{"--filter", "status=exited", "--filter", "name=fmt-"}, "fmt-b\n"},
		{[]string{"--filter", "exited=3", "--filter", "name=fmt-"}, "fmt-b\n"},
		{[]string{"--filter", "exited=0", "--filter", "name=fmt-"}, ""},
		{[]string{"-a", "--filter", "ancestor=busybox", "--filter", "label=tier=db"}, "fmt-b\n"},
	} {
		out := must(t, d, append(append([]string{"ps"}, tc.args...), "--format", "{{.Names}}")...)
		if sortLines(out) != tc.want {
			t.Errorf("ps %v printed %q, want %q", tc.args, out, tc.want)
		}
	}

	out := must(t, d, "ps", "--filter", "name=fmt-a", "--format", "{{.Label \"tier\"}} {{.State}} {{.Ports}}")
	if !strings.HasPrefix(out, "web running 127.0.0.1:") || !strings.Contains(out, "->80/tcp") {
		t.Errorf("ps --format with Label, State and Ports printed %q", out)
	}
	out = must(t, d, "ps", "--filter", "name=fmt-a", "--format", "table {{.Names}}\t{{.Status}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAMES") || !strings.Contains(lines[0], "STATUS") ||
		!strings.HasPrefix(lines[1], "fmt-a") || !strings.Contains(lines[1], "Up ") {
		t.Errorf("ps --format table printed %q", out)
	}
	out = must(t, d, "ps", "--filter", "name=fmt-a", "--format", "json")
	var c struct{ Name string }
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Name != "fmt-a" {
		t.Errorf("ps --format json printed %q (%v)", out, err)
	}

	r := fails(t, d, []string{`unknown key "colour"`, "ancestor"}, "ps", "--filter", "colour=red")
	if r.Code != 125 {
		t.Errorf("ps with a bad filter exited %d, want 125", r.Code)
	}
	r = fails(t, d, []string{"--format"}, "ps", "--format", "{{.Nope")
	if r.Code != 125 {
		t.Errorf("ps with a bad template exited %d, want 125", r.Code)
	}
}

// TestInspectFormatPort checks inspect --format and port, and that
// commands failing on a missing container exit 125 as docker's do.
func TestInspectFormatPort(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "fmt-port", "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp", "busybox", "sleep", "60")
	t.Cleanup(func() { d.Run("", "rm", "-f", "fmt-port") })

	if out := must(t, d, "inspect", "-f", "{{.State.Status}} {{.Name}}", "fmt-port"); out != "running fmt-port\n" {
		t.Errorf("inspect -f printed %q, want \"running fmt-port\"", out)
	}
	if out := must(t, d, "inspect", "--format", "{{json .Config.Cmd}}", "fmt-port"); out != "[\"sleep\",\"60\"]\n" {
		t.Errorf("inspect --format json .Config.Cmd printed %q", out)
	}
	all := must(t, d, "port", "fmt-port")
	lines := strings.Split(strings.TrimSpace(all), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "80/tcp -> 127.0.0.1:") || !strings.HasPrefix(lines[1], "53/udp -> 127.0.0.1:") ||
		strings.HasSuffix(lines[0], ":0") {
		t.Errorf("port printed %q", all)
	}
	one := must(t, d, "port", "fmt-port", "80")
	if "80/tcp -> "+strings.TrimSpace(one) != lines[0] {
		t.Errorf("port fmt-port 80 printed %q, want the address of %q", one, lines[0])
	}
	fails(t, d, []string{"no public port '81/tcp'"}, "port", "fmt-port", "81")

	for _, args := range [][]string{{"inspect", "fmt-missing"}, {"kill", "fmt-missing"}, {"stop", "fmt-missing"}, {"rm", "fmt-missing"}} {
		if r := d.Run("", args...); r.Code != 125 {
			t.Errorf("skiff %v exited %d, want 125: %s", args, r.Code, r)
		}
	}
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	for i := range lines {
		for j := i + 1; j < len(lines); j++ {
			if lines[j] < lines[i] {
				lines[i], lines[j] = lines[j], lines[i]
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
