package e2e

import (
	"strings"
	"testing"
)

// TestRunFixedAddress: skiff run --ip gives the container that address
// (in inspect and on its interface), across a restart; another container
// asking for it is refused before anything is made; network connect
// --ip does the same on a further network; bad addresses are refused
// naming what is wrong.
func TestRunFixedAddress(t *testing.T) {
	d := env.daemon
	must(t, d, "network", "create", "--subnet", "10.213.77.0/24", "e2e-ip-a")
	must(t, d, "network", "create", "--subnet", "10.213.78.0/24", "e2e-ip-b")
	defer func() {
		d.Run("", "rm", "-f", "e2e-ip-one", "e2e-ip-two", "e2e-ip-three")
		d.Run("", "network", "rm", "e2e-ip-a", "e2e-ip-b")
	}()
	must(t, d, "run", "-d", "--name", "e2e-ip-one", "--network", "e2e-ip-a", "--ip", "10.213.77.50", "busybox",
		"sh", "-c", "while true; do echo hello-fixed | nc -l -p 9000; done")
	addrOf := func(name string) string {
		t.Helper()
		c := inspect(t, d, name)
		if c.NetworkSettings == nil {
			t.Fatalf("%s has no network settings", name)
		}
		return c.NetworkSettings.IP
	}
	if ip := addrOf("e2e-ip-one"); ip != "10.213.77.50" {
		t.Fatalf("inspect: address %s, want 10.213.77.50", ip)
	}
	if out := must(t, d, "exec", "e2e-ip-one", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, "inet 10.213.77.50/24") {
		t.Fatalf("eth0 in the container:\n%s", out)
	}
	fails(t, d, []string{"address 10.213.77.50 on network e2e-ip-a is in use by container e2e-ip-one"},
		"run", "-d", "--name", "e2e-ip-two", "--network", "e2e-ip-a", "--ip", "10.213.77.50", "busybox", "sleep", "600")
	if r := d.Run("", "inspect", "e2e-ip-two"); r.Code == 0 {
		t.Fatalf("a refused run left a container: %s", r)
	}
	fails(t, d, []string{"outside network e2e-ip-a"}, "run", "--rm", "--network", "e2e-ip-a", "--ip", "10.213.78.5", "busybox", "true")
	fails(t, d, []string{"network e2e-ip-a's own"}, "run", "--rm", "--network", "e2e-ip-a", "--ip", "10.213.77.1", "busybox", "true")
	fails(t, d, []string{`invalid address "10.213.77"`}, "run", "--rm", "--network", "e2e-ip-a", "--ip", "10.213.77", "busybox", "true")
	fails(t, d, []string{"an address needs a network"}, "run", "--rm", "--network", "none", "--ip", "10.213.77.9", "busybox", "true")

	must(t, d, "stop", "-t", "1", "e2e-ip-one")
	must(t, d, "start", "e2e-ip-one")
	if ip := addrOf("e2e-ip-one"); ip != "10.213.77.50" {
		t.Fatalf("after a restart: address %s, want 10.213.77.50", ip)
	}

	must(t, d, "run", "-d", "--name", "e2e-ip-three", "--network", "e2e-ip-a", "busybox", "sleep", "600")
	must(t, d, "network", "connect", "--ip", "10.213.78.60", "e2e-ip-b", "e2e-ip-three")
	c := inspect(t, d, "e2e-ip-three")
	if ns := c.NetworkSettings; ns == nil || len(ns.Networks) != 2 || ns.Networks[1].IP != "10.213.78.60" {
		t.Fatalf("after connect --ip: %+v", c.NetworkSettings)
	}
	if out := must(t, d, "exec", "e2e-ip-three", "ip", "-o", "-4", "addr", "show", "eth1"); !strings.Contains(out, "inet 10.213.78.60/24") {
		t.Fatalf("eth1 in the container:\n%s", out)
	}
	// The fixed address answers from the other container.
	if out := must(t, d, "exec", "e2e-ip-three", "sh", "-c", "echo | nc -w 3 10.213.77.50 9000"); !strings.Contains(out, "hello-fixed") {
		t.Fatalf("the fixed address from another container:\n%s", out)
	}
	fails(t, d, []string{"in use by container e2e-ip-three"}, "network", "connect", "--ip", "10.213.78.60", "e2e-ip-b", "e2e-ip-one")
}
