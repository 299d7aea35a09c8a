package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"skiff.dev/skiff/internal/store"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "internal/network tests need root: they make network namespaces, bridges and iptables rules")
		os.Exit(1)
	}
	for _, bin := range []string{"iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Fprintf(os.Stderr, "%s is not installed: apt-get install iptables\n", bin)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// testConfig returns a config with a fresh instance, state directory,
// database and resolv.conf (nameserver upstream, if valid).
func testConfig(t testing.TB, upstream netip.Addr) Config {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	resolv := filepath.Join(dir, "resolv.conf")
	content := "search test.invalid\noptions ndots:1\n"
	if upstream.IsValid() {
		content = "nameserver " + upstream.String() + "\n" + content
	}
	if err := os.WriteFile(resolv, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return Config{StateDir: filepath.Join(dir, "state"), DB: st.DB(), Instance: "t" + randomHex(5), ResolvConf: resolv}
}

// newManager starts a Manager on cfg and removes everything it made when
// the test ends.
func newManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.RemoveAll(context.Background()); err != nil {
			t.Errorf("RemoveAll: %v", err)
		}
	})
	return m
}

// abandon drops a Manager the way a daemon's death does: its sockets
// close and its instance lock is released, every host object stays.
func abandon(m *Manager) {
	m.release()
	unlockInstance(m.instanceLock, false)
}

// inNS runs fn on an OS thread inside the network namespace at path.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// dialFrom connects from the namespace at path ("" for the host).
func dialFrom(path, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	dial := func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	}
	if path == "" {
		return c, dial()
	}
	return c, inNS(path, dial)
}

// echoServer listens on addr inside the namespace at path and answers
// each line with name + ": " + line.
func echoServer(t testing.TB, path, addr, name string) net.Listener {
	t.Helper()
	var l net.Listener
	err := inNS(path, func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", path, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+": "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l
}

// udpEchoServer answers each datagram with name + ": " + datagram.
func udpEchoServer(t testing.TB, path, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	err := inNS(path, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen udp in %s: %v", path, err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(name+": "), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
}

// ask sends one line over a new connection from the namespace at path
// and returns the answer.
func ask(path, addr string) (string, error) {
	c, err := dialFrom(path, "tcp4", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// mustAsk is ask that fails the test unless the answer is from want.
func mustAsk(t testing.TB, path, addr, want string) {
	t.Helper()
	got, err := ask(path, addr)
	if err != nil {
		t.Fatalf("from %q to %s: %v", path, addr, err)
	}
	if got != want+": ping" {
		t.Fatalf("from %q to %s: answer %q, want %q", path, addr, got, want+": ping")
	}
}

// mustNotReach fails the test if a connection from path to addr works.
func mustNotReach(t testing.TB, path, addr string) {
	t.Helper()
	c, err := dialFrom(path, "tcp4", addr, 700*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("from %q, %s is reachable; it must not be", path, addr)
	}
}

// lookup asks the nameserver of the resolv.conf in filesDir, from the
// namespace at path, for the A records of name.
func lookup(t testing.TB, path, filesDir, name string) ([]string, int) {
	t.Helper()
	ns := nameserverOf(t, filesDir)
	var resp *mdns.Msg
	err := inNS(path, func() error {
		c := &mdns.Client{Net: "udp", Timeout: 3 * time.Second}
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
		var err error
		resp, _, err = c.Exchange(m, net.JoinHostPort(ns, "53"))
		return err
	})
	if err != nil {
		t.Fatalf("look up %s from %s via %s: %v", name, path, ns, err)
	}
	var out []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*mdns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out, resp.Rcode
}

func nameserverOf(t testing.TB, filesDir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(filesDir, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	r := parseResolvConf(data)
	if len(r.Nameservers) != 1 {
		t.Fatalf("resolv.conf has nameservers %v, want exactly one:\n%s", r.Nameservers, data)
	}
	return r.Nameservers[0].String()
}

// hostCounts are the host objects and state rows of one instance.
type hostCounts struct {
	Veths, NetNS, Rules, Leases, Bridges, Networks int
}

func countObjects(t testing.TB, m *Manager) hostCounts {
	t.Helper()
	var c hostCounts
	veths, err := linkNamesWithPrefix(m.vethPrefix())
	if err != nil {
		t.Fatal(err)
	}
	c.Veths = len(veths)
	bridges, err := linkNamesWithPrefix("skf" + m.Instance() + "-")
	if err != nil {
		t.Fatal(err)
	}
	c.Bridges = len(bridges)
	entries, _ := os.ReadDir(m.netnsDir)
	c.NetNS = len(entries)
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	c.Rules = strings.Count(string(out), "SKIFF-"+m.Instance())
	if err := m.db.QueryRow(`SELECT COUNT(*) FROM network_endpoints`).Scan(&c.Leases); err != nil {
		t.Fatal(err)
	}
	if err := m.db.QueryRow(`SELECT COUNT(*) FROM networks`).Scan(&c.Networks); err != nil {
		t.Fatal(err)
	}
	return c
}

// container makes a unique container ID and a files directory.
func container(t testing.TB, name string) (id, filesDir string) {
	t.Helper()
	return randomHex(64), filepath.Join(t.TempDir(), name)
}
