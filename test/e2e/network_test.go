package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// freePort returns a TCP port of 127.0.0.1 that nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet GETs url from the host, retrying for a while (the server in a
// just-started container may not listen yet), and returns the body.
func httpGet(t testing.TB, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var body string
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
			err = fmt.Errorf("status %s: %s", resp.Status, b)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return body
}

func networkInspect(t *testing.T, d *Daemon, name string) api.Network {
	t.Helper()
	var ns []api.Network
	out := must(t, d, "network", "inspect", name)
	if err := json.Unmarshal([]byte(out), &ns); err != nil || len(ns) != 1 {
		t.Fatalf("network inspect %s: %v\n%s", name, err, out)
	}
	return ns[0]
}

// networksOf returns the daemon's networks as JSON, with the attachments
// of this file's networks only: replicas of Apps that other tests
// deleted may still be leaving the default network.
func networksOf(t *testing.T, d *Daemon) string {
	t.Helper()
	var ns []api.Network
	out := must(t, d, "network", "ls", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		t.Fatalf("network ls: %v\n%s", err, out)
	}
	for i := range ns {
		if !strings.HasPrefix(ns[i].Name, "e2e-") {
			ns[i].Containers = nil
		}
	}
	b, _ := json.MarshalIndent(ns, "", "  ")
	return string(b)
}

// netObjects counts what a daemon's networking made on the host.
type netObjects struct {
	Veths, NetNS, Rules, Leases, Bridges int
}

func countNetObjects(t *testing.T, d *Daemon) netObjects {
	t.Helper()
	// The default network's bridge is skf<instance>-0.
	bridge := networkInspect(t, d, api.DefaultNetwork).Bridge
	inst, _, ok := strings.Cut(strings.TrimPrefix(bridge, "skf"), "-")
	if !ok || inst == "" {
		t.Fatalf("default network bridge %q is not skf<instance>-<n>", bridge)
	}
	var c netObjects
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		switch {
		case strings.HasPrefix(i.Name, "sv"+inst):
			c.Veths++
		case strings.HasPrefix(i.Name, "skf"+inst+"-"):
			c.Bridges++
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 8 && strings.HasPrefix(f[4], d.Root+"/") && strings.Contains(l, " - nsfs ") {
			c.NetNS++
		}
	}
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	c.Rules = strings.Count(string(out), "SKIFF-"+inst+"-")
	var nets []api.Network
	if err := json.Unmarshal([]byte(must(t, d, "network", "ls", "-o", "json")), &nets); err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		c.Leases += len(n.Containers)
	}
	return c
}

func TestNetworkPublishedPort(t *testing.T) {
	d := env.daemon
	port := freePort(t)
	must(t, d, "run", "-d", "--name", "pubweb", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "hello")
	defer d.Run("", "rm", "-f", "pubweb", "pubweb2", "pubweb3")
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "hello from skiff") {
		t.Fatalf("published port answered %q", body)
	}
	c := inspect(t, d, "pubweb")
	ns := c.NetworkSettings
	if ns == nil || ns.Network != api.DefaultNetwork || ns.IP == "" || len(ns.Ports) != 1 || ns.Ports[0].HostPort != port || ns.Ports[0].HostIP != "127.0.0.1" {
		t.Fatalf("network settings %+v", ns)
	}
	// The container's own address answers from the host too.
	if body := httpGet(t, "http://"+net.JoinHostPort(ns.IP, "8080")+"/"); !strings.Contains(body, "hello from skiff") {
		t.Fatalf("container address answered %q", body)
	}

	// A port in use is refused, with a message saying so.
	r := d.Run("", "run", "-d", "--name", "pubweb2", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "hello")
	if r.Code == 0 || !strings.Contains(r.Stderr, "already in use") {
		t.Fatalf("second container on port %d: %s", port, r)
	}

	// Without a host IP or port: a free port of 127.0.0.1.
	must(t, d, "run", "-d", "--name", "pubweb3", "-p", "8080", "hello")
	ns = inspect(t, d, "pubweb3").NetworkSettings
	if ns == nil || len(ns.Ports) != 1 || ns.Ports[0].HostIP != "127.0.0.1" || ns.Ports[0].HostPort == 0 {
		t.Fatalf("-p 8080 gave %+v", ns)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", ns.Ports[0].HostPort)); !strings.Contains(body, "hello from skiff") {
		t.Fatalf("picked port answered %q", body)
	}

	// Bad -p strings are refused before anything is made.
	for _, p := range []string{"http", "80/sctp", "70000:80", "[::1]:80:80"} {
		fails(t, d, []string{"invalid port mapping"}, "run", "--rm", "-p", p, "hello")
	}
}

func TestNetworkContainersByName(t *testing.T) {
	d := env.daemon
	must(t, d, "network", "create", "e2e-shop")
	defer func() {
		d.Run("", "rm", "-f", "e2e-srv", "e2e-api1", "e2e-api2")
		d.Run("", "network", "rm", "e2e-shop")
	}()
	must(t, d, "run", "-d", "--name", "e2e-srv", "--network", "e2e-shop", "echoserver")
	must(t, d, "run", "-d", "--name", "e2e-api1", "--network", "e2e-shop", "--network-alias", "api", "echoserver")
	must(t, d, "run", "-d", "--name", "e2e-api2", "--network", "e2e-shop", "--network-alias", "api", "echoserver")

	// Over HTTP by container name, from another container.
	out := must(t, d, "run", "--rm", "--network", "e2e-shop", "hello", "-get", "http://e2e-srv:8080/by-name")
	if !strings.Contains(out, `"path":"/by-name"`) && !strings.Contains(out, `"path": "/by-name"`) {
		t.Fatalf("GET by name answered %q", out)
	}
	// Over raw TCP by name (busybox nc echoes through the echoserver).
	out = must(t, d, "run", "--rm", "--network", "e2e-shop", "busybox", "sh", "-c",
		"ip=$(nslookup e2e-srv | awk '/^Address/ && !/#53/ && !/:53$/ {print $2}' | tail -1); echo hello-tcp | nc -w 3 $ip 9000")
	if !strings.Contains(out, "hello-tcp") {
		t.Fatalf("TCP echo by name answered %q", out)
	}
	// An alias shared by two replicas has two A records.
	out = must(t, d, "run", "--rm", "--network", "e2e-shop", "busybox", "nslookup", "api")
	ip1, ip2 := inspect(t, d, "e2e-api1").NetworkSettings.IP, inspect(t, d, "e2e-api2").NetworkSettings.IP
	if !strings.Contains(out, ip1) || !strings.Contains(out, ip2) {
		t.Fatalf("nslookup api shows\n%s\nwant both %s and %s", out, ip1, ip2)
	}
	// Files written by skiff.
	out = must(t, d, "run", "--rm", "--network", "e2e-shop", "--name", "e2e-files", "--hostname", "box", "busybox", "sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf")
	gw := networkInspect(t, d, "e2e-shop").Gateway
	for _, want := range []string{"box\n", "\tbox e2e-files\n", "nameserver " + gw + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("container files lack %q:\n%s", want, out)
		}
	}
	// Another network cannot reach these containers, by name or address.
	srvIP := inspect(t, d, "e2e-srv").NetworkSettings.IP
	r := d.Run("", "run", "--rm", "busybox", "nc", "-w", "2", srvIP, "9000")
	if r.Code == 0 {
		t.Fatalf("a container of the default network reached %s on e2e-shop: %s", srvIP, r)
	}
	r = d.Run("", "run", "--rm", "busybox", "nslookup", "e2e-srv")
	if strings.Contains(r.Stdout, srvIP) {
		t.Fatalf("e2e-srv resolves from the default network:\n%s", r)
	}
}

func TestNetworkNoneAndHost(t *testing.T) {
	d := env.daemon
	out := must(t, d, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
	if strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
		t.Fatalf("--network none sees interfaces %q, want only lo", out)
	}
	out = must(t, d, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link", "show", "lo")
	if !strings.Contains(out, "UP") {
		t.Fatalf("lo is not up with --network none: %s", out)
	}
	// The host network shows the host's interfaces.
	hostIfs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	out = must(t, d, "run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
	seen := 0
	for _, i := range hostIfs {
		if i.Flags&net.FlagLoopback == 0 && strings.Contains(out, " "+i.Name+":") {
			seen++
		}
	}
	if seen == 0 {
		t.Fatalf("--network host sees none of the host's interfaces:\n%s", out)
	}
	fails(t, d, []string{"--network host"}, "run", "--rm", "--network", "host", "-p", "8080:80", "hello")
}

func TestNetworkCLI(t *testing.T) {
	d := env.daemon
	waitNoReplicas(t, d)
	defer d.Run("", "network", "rm", "e2e-cli", "e2e-cli2", "e2e-internal")
	defer d.Run("", "rm", "-f", "e2e-user")
	id := strings.TrimSpace(must(t, d, "network", "create", "--subnet", "10.89.231.0/24", "--label", "team=web", "e2e-cli"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q, want the ID", id)
	}
	must(t, d, "network", "create", "--internal", "e2e-internal")
	out := must(t, d, "network", "ls")
	for _, want := range []string{"NETWORK ID", api.DefaultNetwork, "e2e-cli", "10.89.231.0/24", "e2e-internal"} {
		if !strings.Contains(out, want) {
			t.Fatalf("network ls lacks %q:\n%s", want, out)
		}
	}
	if out := must(t, d, "network", "ls", "-o", "wide"); !strings.Contains(out, "team=web") || !strings.Contains(out, "10.89.231.1") {
		t.Fatalf("network ls -o wide:\n%s", out)
	}
	n := networkInspect(t, d, "e2e-cli")
	if n.ID != id || n.Subnet != "10.89.231.0/24" || n.Gateway != "10.89.231.1" || n.Labels["team"] != "web" || n.Driver != "bridge" {
		t.Fatalf("inspect %+v", n)
	}
	if n2 := networkInspect(t, d, id[:12]); n2.Name != "e2e-cli" {
		t.Fatalf("inspect by ID prefix found %q", n2.Name)
	}
	must(t, d, "run", "-d", "--name", "e2e-user", "--network", "e2e-cli", "hello")
	if n := networkInspect(t, d, "e2e-cli"); len(n.Containers) != 1 {
		t.Fatalf("inspect shows %d containers, want 1", len(n.Containers))
	}

	before := networksOf(t, d)
	for _, tc := range []struct {
		name  string
		wants []string
		args  []string
	}{
		{"duplicate name", []string{"already exists"}, []string{"network", "create", "e2e-cli"}},
		{"bad CIDR", []string{"CIDR"}, []string{"network", "create", "--subnet", "10.89.0.0/33", "e2e-cli2"}},
		{"overlapping subnet", []string{"overlaps", "e2e-cli"}, []string{"network", "create", "--subnet", "10.89.231.128/25", "e2e-cli2"}},
		{"reserved name", []string{"reserved"}, []string{"network", "create", "host"}},
		{"unknown network for run", []string{"not found"}, []string{"run", "--rm", "--network", "e2e-nope", "hello"}},
		{"unknown network for rm", []string{"not found"}, []string{"network", "rm", "e2e-nope"}},
		{"network in use", []string{"in use", "e2e-user"}, []string{"network", "rm", "e2e-cli"}},
		{"default network", []string{"default network"}, []string{"network", "rm", api.DefaultNetwork}},
		{"bad output", []string{"unknown output format"}, []string{"network", "ls", "-o", "xml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fails(t, d, tc.wants, tc.args...)
			if after := networksOf(t, d); after != before {
				t.Fatalf("a failed command changed the networks:\n%s\n%s", before, after)
			}
		})
	}
	must(t, d, "rm", "-f", "e2e-user")
	if out := must(t, d, "network", "rm", "e2e-cli", "e2e-internal"); !strings.Contains(out, "e2e-cli") {
		t.Fatalf("network rm printed %q", out)
	}
	fails(t, d, []string{"not found"}, "network", "inspect", "e2e-cli")
}

func TestNetworkCleanupCounts(t *testing.T) {
	d := env.daemon
	waitNoReplicas(t, d)
	base := countNetObjects(t, d)
	must(t, d, "network", "create", "e2e-clean")
	must(t, d, "run", "-d", "--name", "e2e-c1", "-p", "8080", "-p", "127.0.0.1::53/udp", "hello")
	must(t, d, "run", "-d", "--name", "e2e-c2", "--network", "e2e-clean", "--network-alias", "x", "hello")
	must(t, d, "run", "-d", "--name", "e2e-c3", "--network", "none", "hello")
	during := countNetObjects(t, d)
	if during.Veths != base.Veths+2 || during.NetNS != base.NetNS+3 || during.Leases != base.Leases+2 || during.Bridges != base.Bridges+1 || during.Rules <= base.Rules {
		t.Fatalf("while running: %+v, base %+v", during, base)
	}
	must(t, d, "rm", "-f", "e2e-c1", "e2e-c2", "e2e-c3")
	must(t, d, "network", "rm", "e2e-clean")
	if after := countNetObjects(t, d); after != base {
		t.Fatalf("after rm: %+v, want %+v", after, base)
	}
}

// TestNetworkDaemonRestart checks that networking survives the daemon's
// death, and that a container that exits meanwhile is cleaned up.
func TestNetworkDaemonRestart(t *testing.T) {
	d, err := startDaemon("netrestart")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello", "busybox"); err != nil {
		t.Fatal(err)
	}
	base := countNetObjects(t, d)
	port := freePort(t)
	must(t, d, "run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "hello")
	must(t, d, "run", "-d", "--name", "brief", "-p", "8080", "busybox", "sleep", "1")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	httpGet(t, url)
	d.Kill()
	httpGet(t, url) // no daemon: still served
	time.Sleep(1500 * time.Millisecond)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	httpGet(t, url)
	out := must(t, d, "run", "--rm", "hello", "-get", "http://web:8080/")
	if !strings.Contains(out, "hello from skiff") {
		t.Fatalf("web by name after restart: %q", out)
	}
	eventually(t, 10*time.Second, "brief's network to be torn down", func() bool {
		c := countNetObjects(t, d)
		return c.Veths == base.Veths+1 && c.Leases == base.Leases+1
	})
	d.Stop()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	httpGet(t, url)
	must(t, d, "rm", "-f", "web", "brief")
	if after := countNetObjects(t, d); after != base {
		t.Fatalf("after rm: %+v, want %+v", after, base)
	}
}

// BenchmarkNetworkStart compares `skiff run --rm busybox true` on the
// default network with --network none: the difference is what
// networking adds to a container's start and removal.
func BenchmarkNetworkStart(b *testing.B) {
	d := env.daemon
	for _, network := range []string{"none", api.DefaultNetwork} {
		b.Run(network, func(b *testing.B) {
			for b.Loop() {
				if r := d.Run("", "run", "--rm", "--network", network, "busybox", "true"); r.Code != 0 {
					b.Fatal(r)
				}
			}
		})
	}
}
