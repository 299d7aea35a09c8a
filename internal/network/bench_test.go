package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// BenchmarkSetup measures attaching and detaching one container: the
// cost a container start (Setup) and exit (Teardown) pay for networking.
func BenchmarkSetup(b *testing.B) {
	ctx := context.Background()
	m := newManager(b, testConfig(b, netip.Addr{}))
	files := b.TempDir()
	for _, tc := range []struct {
		name, network string
		ports         []api.PortMapping
	}{
		{"none", api.NetworkNone, nil},
		{"bridge", "", nil},
		{"bridge+port", "", []api.PortMapping{{ContainerPort: 80}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var setup, teardown time.Duration
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("bench%08d%s", i, randomHex(8))
				t0 := time.Now()
				if _, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: "c" + id[5:13], Network: tc.network, Ports: tc.ports, FilesDir: files}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := m.Teardown(ctx, id); err != nil {
					b.Fatal(err)
				}
				setup += t1.Sub(t0)
				teardown += time.Since(t1)
			}
			b.ReportMetric(float64(setup.Microseconds())/float64(b.N)/1000, "setup-ms/op")
			b.ReportMetric(float64(teardown.Microseconds())/float64(b.N)/1000, "teardown-ms/op")
		})
	}
}

// pingPong serves 1-byte requests with 1-byte answers, and sinks bulk
// data, on l.
func pingPong(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if n == 1 {
					c.Write(buf[:1])
				}
			}
		}()
	}
}

// BenchmarkTCP compares a server inside a container reached from another
// container and through a published port with the same server on the
// host's loopback: round trips of one byte (latency) and a bulk stream
// (throughput).
func BenchmarkTCP(b *testing.B) {
	ctx := context.Background()
	m := newManager(b, testConfig(b, netip.Addr{}))
	srvID, _ := container(b, "srv")
	srv, err := m.Setup(ctx, SetupRequest{ContainerID: srvID, Name: "srv", Ports: []api.PortMapping{{ContainerPort: 9000}}})
	if err != nil {
		b.Fatal(err)
	}
	cliID, _ := container(b, "cli")
	cli, err := m.Setup(ctx, SetupRequest{ContainerID: cliID, Name: "cli"})
	if err != nil {
		b.Fatal(err)
	}
	var inCtr net.Listener
	if err := inNS(srv.NetNS, func() error { inCtr, err = net.Listen("tcp4", ":9000"); return err }); err != nil {
		b.Fatal(err)
	}
	defer inCtr.Close()
	go pingPong(inCtr)
	onHost, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer onHost.Close()
	go pingPong(onHost)

	paths := []struct{ name, from, addr string }{
		{"host-loopback", "", onHost.Addr().String()},
		{"container-to-container", cli.NetNS, net.JoinHostPort(srv.IP, "9000")},
		{"host-to-published-port", "", fmt.Sprintf("127.0.0.1:%d", srv.Ports[0].HostPort)},
	}
	for _, p := range paths {
		c, err := dialFrom(p.from, "tcp4", p.addr, 2*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("rtt/"+p.name, func(b *testing.B) {
			one := []byte{1}
			for b.Loop() {
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("stream/"+p.name, func(b *testing.B) {
			chunk := make([]byte, 256<<10)
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
		c.Close()
	}
}
