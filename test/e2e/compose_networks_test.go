package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const composeNetworks = `name: cnet
services:
  web:
    image: echoserver
    networks: [front]
  db:
    image: echoserver
    networks:
      back:
        aliases: [database]
        ipv4_address: 10.213.100.20
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    networks:
      back:
        aliases: [app-back]
      front: {}
  lone:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    networks: [front, shared]
  inner:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    networks: [back]
networks:
  front: {}
  back:
    internal: true
    ipam:
      config:
        - subnet: 10.213.100.0/24
  shared:
    external: true
    name: e2e-cnet-shared
`

// TestComposeSeveralNetworks: a service on two networks (one internal)
// reaches the services of both by name and alias, and gets its default
// route from the one that is not internal; a service on one of them
// only does not reach the other's; a service on the internal network
// only has no route out; an external network is joined, and kept by down.
func TestComposeSeveralNetworks(t *testing.T) {
	d := env.daemon
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeNetworks})
	fails(t, d, []string{"network e2e-cnet-shared is external but does not exist"}, append(base, "up", "-d")...)
	if r := skiff("network", "inspect", "cnet_front"); r.Code == 0 {
		t.Fatal("an up refused for a missing external network made the project's networks")
	}
	must(t, d, "network", "create", "e2e-cnet-shared")
	t.Cleanup(func() {
		skiff(append(base, "down")...)
		skiff("network", "rm", "e2e-cnet-shared")
	})
	out := composeRun(t, base, "up", "-d")
	if strings.Contains(out, "WARNING") {
		t.Errorf("up warns about a supported key:\n%s", out)
	}
	for _, want := range []string{"Network cnet_front  Created", "Network cnet_back  Created"} {
		if !strings.Contains(out, want) {
			t.Errorf("up does not print %q:\n%s", want, out)
		}
	}
	app := inspect(t, d, "cnet-app-1")
	if ns := app.NetworkSettings; ns == nil || ns.Network != "cnet_front" || len(ns.Networks) != 2 || ns.Networks[1].Network != "cnet_back" {
		t.Fatalf("app's networks: %+v (want cnet_front first: cnet_back is internal)", app.NetworkSettings)
	}
	for _, n := range []string{"web", "db", "database"} {
		if out := composeRun(t, base, "exec", "app", "sh", "-c", tcpByName(n)); !strings.Contains(out, "hello-"+n) {
			t.Fatalf("app to %s: %q", n, out)
		}
	}
	if ip := inspect(t, d, "cnet-db-1").NetworkSettings.IP; ip != "10.213.100.20" {
		t.Fatalf("db's address %s, want its ipv4_address 10.213.100.20", ip)
	}
	if out := must(t, d, "network", "inspect", "cnet_back"); !strings.Contains(out, "10.213.100.0/24") {
		t.Fatalf("cnet_back is not made with its ipam subnet:\n%s", out)
	}
	if out := composeRun(t, base, "exec", "app", "nslookup", "database"); !strings.Contains(out, "10.213.100.20") {
		t.Fatalf("database from app:\n%s", out)
	}
	// A changed service with a fixed address is recreated stop-first:
	// the new container takes the address the old one gave back.
	changed := strings.Replace(composeNetworks, "        ipv4_address: 10.213.100.20\n", "        ipv4_address: 10.213.100.20\n    environment: {CHANGED: \"1\"}\n", 1)
	if changed == composeNetworks {
		t.Fatal("the compose file was not changed")
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := composeRun(t, base, "up", "-d"); !strings.Contains(out, "Container cnet-db-1  Recreated") {
		t.Fatalf("up after a change of db:\n%s", out)
	}
	if ip := inspect(t, d, "cnet-db-1").NetworkSettings.IP; ip != "10.213.100.20" {
		t.Fatalf("recreated db's address %s, want 10.213.100.20", ip)
	}
	if out := composeRun(t, base, "exec", "inner", "nslookup", "app-back"); !strings.Contains(out, app.NetworkSettings.Networks[1].IP) {
		t.Fatalf("app-back from the internal network:\n%s", out)
	}
	if r := skiff(append(base, "exec", "lone", "sh", "-c", tcpByName("db"))...); r.Code == 0 || strings.Contains(r.Stdout, "hello-db") {
		t.Fatalf("lone reached db on a network it is not on: %s", r)
	}
	if out := composeRun(t, base, "exec", "app", "ip", "route"); !strings.Contains(out, "default via "+app.NetworkSettings.Gateway) {
		t.Fatalf("app's routes:\n%s\nwant the default route via %s", out, app.NetworkSettings.Gateway)
	}
	if out := composeRun(t, base, "exec", "inner", "ip", "route"); strings.Contains(out, "default") {
		t.Fatalf("a container on the internal network only has a default route:\n%s", out)
	}
	if ns := inspect(t, d, "cnet-lone-1").NetworkSettings; len(ns.Networks) != 2 || ns.Networks[1].Network != "e2e-cnet-shared" {
		t.Fatalf("lone's networks: %+v", ns.Networks)
	}
	composeRun(t, base, "down")
	must(t, d, "network", "inspect", "e2e-cnet-shared")
	for _, n := range []string{"cnet_front", "cnet_back"} {
		if r := skiff("network", "inspect", n); r.Code == 0 {
			t.Errorf("down left network %s", n)
		}
	}
}
