package e2e

import (
	"strings"
	"testing"
)

// tcpByName is a busybox script that resolves NAME and sends a line to
// the echoserver's TCP port there: it prints the echo, or fails.
func tcpByName(name string) string {
	return "ip=$(nslookup " + name + " | awk '/^Address/ && !/#53/ && !/:53$/ {print $2}' | tail -1); " +
		`[ -n "$ip" ] || { echo "no address for ` + name + `"; exit 1; }; echo hello-` + name + " | nc -w 3 $ip 9000"
}

// TestNetworkSeveral: a container on two networks reaches a service on
// each by name (and by the alias it has on the second); one only on the
// first reaches neither the second network's service nor its name;
// connect and disconnect act on a running container, and its networks
// stay across a restart.
func TestNetworkSeveral(t *testing.T) {
	d := env.daemon
	must(t, d, "network", "create", "e2e-mn-front")
	must(t, d, "network", "create", "e2e-mn-back")
	defer func() {
		d.Run("", "rm", "-f", "e2e-mn-web", "e2e-mn-db", "e2e-mn-app", "e2e-mn-lone", "e2e-mn-peer")
		d.Run("", "network", "rm", "e2e-mn-front", "e2e-mn-back")
	}()
	must(t, d, "run", "-d", "--name", "e2e-mn-web", "--network", "e2e-mn-front", "echoserver")
	must(t, d, "run", "-d", "--name", "e2e-mn-db", "--network", "e2e-mn-back", "--network-alias", "database", "echoserver")
	must(t, d, "run", "-d", "--name", "e2e-mn-app", "--network", "e2e-mn-front", "busybox", "sleep", "600")
	must(t, d, "run", "-d", "--name", "e2e-mn-lone", "--network", "e2e-mn-front", "busybox", "sleep", "600")
	must(t, d, "run", "-d", "--name", "e2e-mn-peer", "--network", "e2e-mn-back", "busybox", "sleep", "600")

	must(t, d, "network", "connect", "--alias", "app-back", "e2e-mn-back", "e2e-mn-app")
	c := inspect(t, d, "e2e-mn-app")
	if ns := c.NetworkSettings; ns == nil || len(ns.Networks) != 2 || ns.Networks[1].Network != "e2e-mn-back" || ns.Networks[1].Interface != "eth1" {
		t.Fatalf("inspect after connect: %+v", c.NetworkSettings)
	}
	if len(c.Config.ExtraNetworks) != 1 || c.Config.ExtraNetworks[0].Network != "e2e-mn-back" {
		t.Fatalf("config after connect: %+v", c.Config.ExtraNetworks)
	}
	reach := func(ctr string, names ...string) {
		t.Helper()
		for _, n := range names {
			out := must(t, d, "exec", ctr, "sh", "-c", tcpByName(n))
			if !strings.Contains(out, "hello-"+n) {
				t.Fatalf("%s to %s: %q", ctr, n, out)
			}
		}
	}
	reach("e2e-mn-app", "e2e-mn-web", "e2e-mn-db", "database")
	if out := must(t, d, "exec", "e2e-mn-app", "ip", "-o", "-4", "addr"); !strings.Contains(out, "eth1") {
		t.Fatalf("no eth1 in the container:\n%s", out)
	}
	// The alias is on the second network only: a peer there sees it,
	// the lone container (first network only) does not.
	appBack := inspect(t, d, "e2e-mn-app").NetworkSettings.Networks[1].IP
	if out := must(t, d, "exec", "e2e-mn-peer", "nslookup", "app-back"); !strings.Contains(out, appBack) {
		t.Fatalf("app-back from the second network:\n%s\nwant %s", out, appBack)
	}
	if r := d.Run("", "exec", "e2e-mn-lone", "nslookup", "app-back"); strings.Contains(r.Stdout, appBack) {
		t.Fatalf("app-back resolves on the first network:\n%s", r)
	}
	dbIP := inspect(t, d, "e2e-mn-db").NetworkSettings.IP
	notReach := func(ctr string) {
		t.Helper()
		if r := d.Run("", "exec", ctr, "sh", "-c", tcpByName("e2e-mn-db")); r.Code == 0 || strings.Contains(r.Stdout, "hello-") {
			t.Fatalf("%s reached the db by name: %s", ctr, r)
		}
		if r := d.Run("", "exec", ctr, "sh", "-c", "echo x | nc -w 2 "+dbIP+" 9000"); r.Code == 0 && strings.Contains(r.Stdout, "x") {
			t.Fatalf("%s reached the db at %s: %s", ctr, dbIP, r)
		}
	}
	reach("e2e-mn-lone", "e2e-mn-web")
	notReach("e2e-mn-lone")

	// Refusals, named.
	fails(t, d, []string{"already on network e2e-mn-back"}, "network", "connect", "e2e-mn-back", "e2e-mn-app")
	fails(t, d, []string{"first network"}, "network", "disconnect", "e2e-mn-front", "e2e-mn-app")
	fails(t, d, []string{"not on network e2e-mn-back"}, "network", "disconnect", "e2e-mn-back", "e2e-mn-lone")
	must(t, d, "network", "disconnect", "-f", "e2e-mn-back", "e2e-mn-lone")
	fails(t, d, []string{"in use"}, "network", "rm", "e2e-mn-back")

	// The attachment outlives a restart of the container.
	must(t, d, "restart", "-t", "0", "e2e-mn-app")
	reach("e2e-mn-app", "e2e-mn-db")

	must(t, d, "network", "disconnect", "e2e-mn-back", "e2e-mn-app")
	notReach("e2e-mn-app")
	reach("e2e-mn-app", "e2e-mn-web")
	if c := inspect(t, d, "e2e-mn-app"); len(c.NetworkSettings.Networks) != 1 || len(c.Config.ExtraNetworks) != 0 {
		t.Fatalf("after disconnect: %+v %+v", c.NetworkSettings, c.Config.ExtraNetworks)
	}
}

// TestNetworkSeveralDaemonRestart: a container connected to a second
// network keeps reaching its services by name when the daemon is killed
// and started again, and after a restart of the container itself.
func TestNetworkSeveralDaemonRestart(t *testing.T) {
	d, err := startDaemon("multinet")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "busybox", "echoserver"); err != nil {
		t.Fatal(err)
	}
	must(t, d, "network", "create", "back")
	must(t, d, "run", "-d", "--name", "db", "--network", "back", "echoserver")
	must(t, d, "run", "-d", "--name", "app", "busybox", "sleep", "600")
	must(t, d, "network", "connect", "back", "app")
	check := func(when string) {
		t.Helper()
		if out := must(t, d, "exec", "app", "sh", "-c", tcpByName("db")); !strings.Contains(out, "hello-db") {
			t.Fatalf("%s: app to db: %q", when, out)
		}
	}
	check("connected")
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	check("after the daemon was killed and started")
	must(t, d, "restart", "-t", "0", "app")
	check("after a restart of app")
	must(t, d, "rm", "-f", "app", "db")
	must(t, d, "network", "rm", "back")
}
