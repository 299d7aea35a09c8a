package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestRunAddHost checks that --add-host lines reach the container's
// /etc/hosts, host-gateway as its network's gateway.
func TestRunAddHost(t *testing.T) {
	out := must(t, env.daemon, "run", "--rm", "--add-host", "db.internal:10.1.2.3", "--add-host", "gw:host-gateway",
		"busybox", "sh", "-c", "cat /etc/hosts; ip route")
	if !strings.Contains(out, "10.1.2.3\tdb.internal\n") {
		t.Errorf("no db.internal line in /etc/hosts:\n%s", out)
	}
	m := regexp.MustCompile(`default via (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no default route in the container:\n%s", out)
	}
	if !strings.Contains(out, m[1]+"\tgw\n") {
		t.Errorf("host-gateway is not the gateway %s:\n%s", m[1], out)
	}
}

// TestRunDNS checks that --dns replaces skiff's DNS server in the
// container's resolv.conf, and --dns-search and --dns-option land there.
func TestRunDNS(t *testing.T) {
	out := must(t, env.daemon, "run", "--rm", "--dns", "9.9.9.9", "--dns", "1.1.1.1", "--dns-search", "corp.example",
		"--dns-option", "ndots:3", "busybox", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 9.9.9.9\nnameserver 1.1.1.1\n", "search corp.example\n", "options ndots:3\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in resolv.conf:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "nameserver"); n != 2 {
		t.Errorf("resolv.conf lists %d nameservers, want only the two given:\n%s", n, out)
	}
}

// TestRunHostsDNSInvalid checks that bad values are refused, naming the
// value and the expected form, and create nothing.
func TestRunHostsDNSInvalid(t *testing.T) {
	for _, tc := range []struct {
		args, wants []string
	}{
		{[]string{"--add-host", "db.internal"}, []string{`"db.internal"`, "NAME:IP"}},
		{[]string{"--add-host", "db:10.1.2"}, []string{`"10.1.2" is not an IP address`}},
		{[]string{"--dns", "dns.example"}, []string{`"dns.example"`, "IP address"}},
		{[]string{"--dns-search", "a b"}, []string{`"a b"`, "domain name"}},
		{[]string{"--dns-option", "ndots:2 edns0"}, []string{`"ndots:2 edns0"`, "without spaces"}},
		{[]string{"--network", "none", "--add-host", "gw:host-gateway"}, []string{`"gw:host-gateway"`, "no gateway"}},
	} {
		r := fails(t, env.daemon, tc.wants, append(append([]string{"run", "--rm", "--name", "hosts-bad"}, tc.args...), "busybox", "true")...)
		if r.Code != 125 {
			t.Errorf("%v: exit %d, want 125", tc.args, r.Code)
		}
	}
	if out := must(t, env.daemon, "ps", "-a"); strings.Contains(out, "hosts-bad") {
		t.Errorf("a refused run made a container:\n%s", out)
	}
}

// TestComposeHostsDNS checks compose's extra_hosts, dns, dns_search and
// dns_opt reach the service's container without a warning.
func TestComposeHostsDNS(t *testing.T) {
	_, base := composeProject(t, map[string]string{"compose.yaml": `name: chosts
services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    extra_hosts: ["db.internal:10.1.2.3"]
    dns: 9.9.9.9
    dns_search: [corp.example]
    dns_opt: ["ndots:3"]
`})
	t.Cleanup(func() { skiff(append(base, "down")...) })
	out := composeRun(t, base, "up", "-d", "--wait")
	if strings.Contains(out, "WARNING") {
		t.Errorf("extra_hosts or dns was reported unsupported:\n%s", out)
	}
	files := composeRun(t, base, "exec", "app", "cat", "/etc/hosts", "/etc/resolv.conf")
	for _, want := range []string{"10.1.2.3\tdb.internal\n", "nameserver 9.9.9.9\n", "search corp.example\n", "options ndots:3\n"} {
		if !strings.Contains(files, want) {
			t.Errorf("no %q in the container's hosts and resolv.conf:\n%s", want, files)
		}
	}
}
