package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// isolationApp is an App of the busybox image serving HTTP on 8080 with
// busybox httpd, so its replicas have nc to connect to other Apps with.
func isolationApp(name, labels, network string) string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s, labels: {%s}}
spec:
  image: busybox
  command: [httpd, -f, -p, "8080", -h, /tmp]
  probes:
    readiness: {tcp: 8080, period: 200ms}
%s`, name, labels, network)
}

// replicaIP returns the address of app's first replica.
func replicaIP(t *testing.T, d *Daemon, app string) (ip, containerID string) {
	t.Helper()
	reps := replicasOf(t, d, app)
	if len(reps) == 0 {
		t.Fatalf("%s has no replica", app)
	}
	c := inspect(t, d, reps[0].ContainerID)
	if c.NetworkSettings == nil || c.NetworkSettings.IP == "" {
		t.Fatalf("replica of %s has no address: %+v", app, c.NetworkSettings)
	}
	return c.NetworkSettings.IP, c.ID
}

// probeHTTP is a shell command that sends GET /healthz to ip:8080 with nc
// and prints "reached" when an HTTP status line comes back, "refused"
// otherwise.
func probeHTTP(ip string) string {
	return fmt.Sprintf(`if printf 'GET /healthz HTTP/1.0\r\n\r\n' | timeout 3 nc %s 8080 | grep -q '^HTTP/'; then echo reached; else echo refused; fi`, ip)
}

// fromReplica connects from the first replica of app to ip:8080.
func fromReplica(t *testing.T, d *Daemon, app, ip string) string {
	t.Helper()
	_, id := replicaIP(t, d, app)
	r := d.Run("", "exec", id, "sh", "-c", probeHTTP(ip))
	return strings.TrimSpace(r.Stdout)
}

// fromContainer connects from a new plain container to ip:8080.
func fromContainer(t *testing.T, d *Daemon, ip string) string {
	t.Helper()
	r := d.Run("", "run", "--rm", "busybox", "sh", "-c", probeHTTP(ip))
	return strings.TrimSpace(r.Stdout)
}

// daemonMetrics reads d's Prometheus metrics from its API socket.
func daemonMetrics(t *testing.T, d *Daemon) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
	resp, err := c.Get("http://skiff/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var refusedRE = regexp.MustCompile(`(?m)^skiff_network_refused_total\{app="a"\} (\d+)$`)

// refusedOf returns skiff_network_refused_total of App a, -1 when absent.
func refusedOf(t *testing.T, d *Daemon) int {
	m := refusedRE.FindStringSubmatch(daemonMetrics(t, d))
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// iptablesLines returns the lines of iptables-save (filter table) that
// contain every one of subs.
func iptablesLines(t *testing.T, subs ...string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(out), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestAppIsolation: an App's replicas accept connections from the Apps
// its allowFrom selects and from the ingress; other Apps and plain
// containers are refused, counted and reported; editing allowFrom changes
// that at once; a daemon restart keeps the rules without adding any; a
// deleted App takes its rules along.
func TestAppIsolation(t *testing.T) {
	d, err := startDaemon("isolation")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello", "busybox"); err != nil {
		t.Fatal(err)
	}
	bridge := networkInspect(t, d, api.DefaultNetwork).Bridge
	inst, _, _ := strings.Cut(strings.TrimPrefix(bridge, "skf"), "-")
	chains := "SKIFF-" + inst + "-"

	applyYAML(t, d, helloApp("a", "1", "  network:\n    allowFrom: [{app: b}]\n"))
	applyYAML(t, d, isolationApp("b", "", ""))
	applyYAML(t, d, isolationApp("c", "team: web", ""))
	for _, app := range []string{"a", "b", "c"} {
		eventually(t, 60*time.Second, app+" ready", appReady(t, d, app))
	}
	ipA, _ := replicaIP(t, d, "a")

	if got := fromReplica(t, d, "b", ipA); got != "reached" {
		t.Fatalf("b, allowed, could not reach a: %q", got)
	}
	if got := fromReplica(t, d, "c", ipA); got != "refused" {
		t.Fatalf("c, not allowed, reached a: %q", got)
	}
	if got := fromContainer(t, d, ipA); got != "refused" {
		t.Fatalf("a plain container reached a: %q", got)
	}
	// Not protected by any allowFrom of its own, b still refuses a plain
	// container: every App is isolated by default.
	ipB, _ := replicaIP(t, d, "b")
	if got := fromContainer(t, d, ipB); got != "refused" {
		t.Fatalf("a plain container reached b: %q", got)
	}
	addr := ingressAddr(t, d)
	if code, body := get(t, addr, "a.localhost", "/"); code != 200 {
		t.Fatalf("the ingress cannot reach a: %d %s", code, body)
	}

	// Refusals are counted and reported.
	eventually(t, 10*time.Second, "refusals counted in skiff_network_refused_total", func() bool { return refusedOf(t, d) >= 2 })
	eventually(t, 10*time.Second, "a ConnectionRefused event", func() bool {
		return strings.Contains(d.Run("", "events", "a").Stdout, "ConnectionRefused")
	})

	// allowFrom edited: by labels, c is in and b is out.
	if r := applyYAML(t, d, helloApp("a", "1", "  network:\n    allowFrom: [{selector: {matchLabels: {team: web}}}]\n")); r.Code != 0 {
		t.Fatal(r)
	}
	eventually(t, 10*time.Second, "c allowed into a", func() bool { return fromReplica(t, d, "c", ipA) == "reached" })
	if got := fromReplica(t, d, "b", ipA); got != "refused" {
		t.Fatalf("b, no longer allowed, reached a: %q", got)
	}
	if ip, _ := replicaIP(t, d, "a"); ip != ipA {
		t.Fatalf("editing allowFrom replaced a's replica (%s → %s): it must not make a revision", ipA, ip)
	}

	// A restart rebuilds the same rules: one jump, c still in, b still out.
	before := refusedOf(t, d)
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if n := len(iptablesLines(t, "-A FORWARD -j "+chains+"APPS")); n != 1 {
		t.Fatalf("%d jumps to the Apps chain after a restart, want 1", n)
	}
	if n := len(iptablesLines(t, "-A "+chains+"APPS -d "+ipA+"/32")); n != 1 {
		t.Fatalf("%d rules lead to a's replica after a restart, want 1", n)
	}
	if got := fromReplica(t, d, "c", ipA); got != "reached" {
		t.Fatalf("c could not reach a after a restart: %q", got)
	}
	if got := fromReplica(t, d, "b", ipA); got != "refused" {
		t.Fatalf("b reached a after a restart: %q", got)
	}
	eventually(t, 10*time.Second, "the refusal count to keep growing across the restart", func() bool { return refusedOf(t, d) > before })

	// A deleted App takes its chains along.
	must(t, d, "delete", "app", "a")
	eventually(t, 30*time.Second, "a's rules removed", func() bool {
		return len(iptablesLines(t, chains, `"skiff app a"`)) == 0 && len(iptablesLines(t, "-A "+chains+"APPS -d "+ipA+"/32")) == 0
	})
	must(t, d, "delete", "app", "b")
	must(t, d, "delete", "app", "c")
}

// TestReplicaLabelsReserved: a container made through the API cannot
// carry the label that marks App replicas, which would give it an App's
// rights on the network.
func TestReplicaLabelsReserved(t *testing.T) {
	r := fails(t, env.daemon, []string{"label skiff.dev/app is reserved for the replicas of Apps"}, "run", "--rm", "--label", "skiff.dev/app=a", "busybox", "true")
	if r.Code == 0 {
		t.Fatal(r)
	}
}
