package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func TestPublishedPorts(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	other, err := m.Create(ctx, api.NetworkCreateRequest{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	webID, webFiles := container(t, "web")
	web, err := m.Setup(ctx, SetupRequest{ContainerID: webID, Name: "web", FilesDir: webFiles, Ports: []api.PortMapping{
		{ContainerPort: 8080},                    // 127.0.0.1, a free port
		{HostIP: "0.0.0.0", ContainerPort: 8080}, // every address, a free port
		{HostIP: "127.0.0.1", ContainerPort: 9090, Protocol: "udp"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(web.Ports) != 3 {
		t.Fatalf("ports %+v", web.Ports)
	}
	for _, p := range web.Ports {
		if p.HostPort == 0 || p.HostIP == "" || p.Protocol == "" {
			t.Fatalf("port not resolved: %+v", p)
		}
		// A free port is never one the kernel gives other programs.
		if end := ephemeralEnd(); end < 65535 && p.HostPort <= end {
			t.Errorf("free port %d is in the kernel's ephemeral range (ends at %d)", p.HostPort, end)
		}
	}
	local, any, udp := web.Ports[0], web.Ports[1], web.Ports[2]
	if local.HostIP != "127.0.0.1" || any.HostIP != "0.0.0.0" {
		t.Fatalf("host IPs %+v", web.Ports)
	}
	echoServer(t, web.NetNS, ":8080", "web")
	udpEchoServer(t, web.NetNS, ":9090", "web-udp")
	cliID, cliFiles := container(t, "client")
	cli, err := m.Setup(ctx, SetupRequest{ContainerID: cliID, Name: "client", FilesDir: cliFiles})
	if err != nil {
		t.Fatal(err)
	}
	farID, _ := container(t, "far")
	far, err := m.Setup(ctx, SetupRequest{ContainerID: farID, Name: "far", Network: "other"})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := m.Inspect(ctx, api.DefaultNetwork)

	tests := []struct {
		name, from, addr string
	}{
		{"host to 127.0.0.1", "", fmt.Sprintf("127.0.0.1:%d", local.HostPort)},
		{"host to 127.0.0.1 of an all-address port", "", fmt.Sprintf("127.0.0.1:%d", any.HostPort)},
		{"host to its bridge address", "", net.JoinHostPort(def.Gateway, fmt.Sprint(any.HostPort))},
		{"hairpin: another container via the host address", cli.NetNS, net.JoinHostPort(def.Gateway, fmt.Sprint(any.HostPort))},
		{"hairpin: the container to itself via the host address", web.NetNS, net.JoinHostPort(def.Gateway, fmt.Sprint(any.HostPort))},
		{"a container on another network via its host address", far.NetNS, net.JoinHostPort(other.Gateway, fmt.Sprint(any.HostPort))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { mustAsk(t, tc.from, tc.addr, "web") })
	}
	t.Run("loopback-only port is not on other addresses", func(t *testing.T) {
		mustNotReach(t, cli.NetNS, net.JoinHostPort(def.Gateway, fmt.Sprint(local.HostPort)))
	})
	t.Run("udp from the host", func(t *testing.T) {
		c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", udp.HostPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte("ping"))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "web-udp: ping" {
			t.Fatalf("udp answer %q, %v", buf[:n], err)
		}
	})
	t.Run("a published port is held", func(t *testing.T) {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", local.HostPort))
		if err == nil {
			l.Close()
			t.Fatal("another program could listen on a published port")
		}
	})

	// Teardown releases the port and removes the rules.
	if err := m.Teardown(ctx, webID); err != nil {
		t.Fatal(err)
	}
	rules, _ := m.fw.Rules(ctx)
	if strings.Contains(strings.Join(rules, "\n"), "DNAT --to-destination") {
		t.Fatalf("DNAT rules left:\n%s", strings.Join(rules, "\n"))
	}
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", local.HostPort))
	if err != nil {
		t.Fatalf("port not released after teardown: %v", err)
	}
	l.Close()
}

func TestPortInUse(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	before := countObjects(t, m)
	id, files := container(t, "web")
	_, err = m.Setup(ctx, SetupRequest{ContainerID: id, Name: "web", FilesDir: files, Ports: []api.PortMapping{
		{ContainerPort: 80, HostPort: 0}, {ContainerPort: 81, HostPort: busy},
	}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d/tcp is already in use", busy)) {
		t.Fatalf("err = %v, want port in use", err)
	}
	if after := countObjects(t, m); after != before {
		t.Fatalf("a failed setup left objects: before %+v, after %+v", before, after)
	}
	// The same port twice in one daemon is refused too.
	id1, _ := container(t, "a")
	id2, _ := container(t, "b")
	p := []api.PortMapping{{ContainerPort: 80, HostPort: 0}}
	s1, err := m.Setup(ctx, SetupRequest{ContainerID: id1, Name: "a", Ports: p})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Setup(ctx, SetupRequest{ContainerID: id2, Name: "b", Ports: []api.PortMapping{{ContainerPort: 80, HostPort: s1.Ports[0].HostPort}}})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second container on the same host port: %v", err)
	}
}
