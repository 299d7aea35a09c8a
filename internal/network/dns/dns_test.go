package dns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a fake resolver answering every A query with 192.0.2.99.
func upstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "nx.example." {
			m.Rcode = dns.RcodeNameError
		} else {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 99)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func start(t *testing.T, upstreams ...string) *Server {
	t.Helper()
	s, err := Listen(context.Background(), Config{Addr: "127.0.0.1:0", Upstreams: upstreams})
	if err != nil {
		t.Fatal(err)
	}
	// With port 0, UDP and TCP get different ports: query reads both.
	t.Cleanup(func() { s.Close() })
	return s
}

func query(t *testing.T, s *Server, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	addr := s.udp.PacketConn.LocalAddr().String()
	if proto == "tcp" {
		addr = s.tcp.Listener.Addr().String()
	}
	c := &dns.Client{Net: proto, Timeout: 3 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", proto, name, err)
	}
	return r
}

func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	slices.Sort(out)
	return out
}

func TestServer(t *testing.T) {
	s := start(t, upstream(t))
	s.Add("c1", netip.MustParseAddr("10.89.0.2"), "web", "shop")
	s.Add("c2", netip.MustParseAddr("10.89.0.3"), "web-2", "shop")
	s.Add("c3", netip.MustParseAddr("10.89.0.4"), "db")
	tests := []struct {
		name   string
		proto  string
		q      string
		qtype  uint16
		rcode  int
		want   []string
		author bool
	}{
		{"container name", "udp", "web", dns.TypeA, dns.RcodeSuccess, []string{"10.89.0.2"}, true},
		{"case-insensitive", "udp", "WEB", dns.TypeA, dns.RcodeSuccess, []string{"10.89.0.2"}, true},
		{"alias shared by replicas", "udp", "shop", dns.TypeA, dns.RcodeSuccess, []string{"10.89.0.2", "10.89.0.3"}, true},
		{"over tcp", "tcp", "shop", dns.TypeA, dns.RcodeSuccess, []string{"10.89.0.2", "10.89.0.3"}, true},
		{"AAAA of a container is empty, not forwarded", "udp", "db", dns.TypeAAAA, dns.RcodeSuccess, nil, true},
		{"reverse lookup", "udp", "4.0.89.10.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, []string{"db."}, true},
		{"other names are forwarded", "udp", "example.org", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.99"}, false},
		{"upstream NXDOMAIN passes through", "udp", "nx.example", dns.TypeA, dns.RcodeNameError, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, s, tc.proto, tc.q, tc.qtype)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := addrs(r); !slices.Equal(got, tc.want) {
				t.Fatalf("answers %v, want %v", got, tc.want)
			}
			if r.Authoritative != tc.author {
				t.Fatalf("authoritative %v, want %v", r.Authoritative, tc.author)
			}
		})
	}

	s.Remove("c1")
	if got := addrs(query(t, s, "udp", "shop", dns.TypeA)); !slices.Equal(got, []string{"10.89.0.3"}) {
		t.Fatalf("after removing c1, shop = %v", got)
	}
	if got := addrs(query(t, s, "udp", "web", dns.TypeA)); !slices.Equal(got, []string{"192.0.2.99"}) {
		t.Fatalf("after removing c1, web should be forwarded, got %v", got)
	}
	if got := addrs(query(t, s, "udp", "2.0.89.10.in-addr.arpa", dns.TypePTR)); slices.Contains(got, "web.") {
		t.Fatalf("PTR of a removed container still answered: %v", got)
	}
}

func TestNoUpstreamsRefuses(t *testing.T) {
	s := start(t)
	s.Add("c1", netip.MustParseAddr("10.89.0.2"), "web")
	if r := query(t, s, "udp", "example.org", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if got := addrs(query(t, s, "udp", "web", dns.TypeA)); !slices.Equal(got, []string{"10.89.0.2"}) {
		t.Fatalf("web = %v", got)
	}
}

func TestDeadUpstreamIsServfail(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := start(t, pc.LocalAddr().String())
	start := time.Now()
	if r := query(t, s, "udp", "example.org", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if d := time.Since(start); d > ForwardTimeout+time.Second {
		t.Fatalf("SERVFAIL took %s", d)
	}
}

func TestManyReplicasTruncateOverUDP(t *testing.T) {
	s := start(t)
	for i := range 100 {
		s.Add("c"+string(rune('A'+i%26))+string(rune('a'+i/26)), netip.AddrFrom4([4]byte{10, 89, 1, byte(i + 2)}), "replicated-service-name")
	}
	r := query(t, s, "udp", "replicated-service-name", dns.TypeA)
	if !r.Truncated {
		t.Fatalf("100 A records over plain UDP should be truncated, got %d answers", len(r.Answer))
	}
	if r := query(t, s, "tcp", "replicated-service-name", dns.TypeA); len(r.Answer) != 100 {
		t.Fatalf("over TCP got %d answers, want 100", len(r.Answer))
	}
}

// TestCloseRightAfterListen: a server closed as soon as it is made frees
// its address (the sockets are served, so Shutdown can stop them).
func TestCloseRightAfterListen(t *testing.T) {
	// A port below the kernel's ephemeral range, so no other socket on
	// the host takes it between the rounds.
	var addr string
	for addr == "" {
		a := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if s, err := Listen(context.Background(), Config{Addr: a}); err == nil {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			addr = a
		}
	}
	for i := range 200 {
		s, err := Listen(context.Background(), Config{Addr: addr})
		if err != nil {
			t.Fatalf("listen %d on %s after a close: %v", i, addr, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
}

// TestServeOnHandedOverSockets hands a server's sockets to a new one: a
// query sent while neither serves waits in the socket and is answered by
// the new server, on the same addresses.
func TestServeOnHandedOverSockets(t *testing.T) {
	old := start(t)
	udpAddr := old.udp.PacketConn.LocalAddr().String()
	tcpAddr := old.tcp.Listener.Addr().String()
	socks, err := old.Files()
	if err != nil {
		t.Fatal(err)
	}
	defer socks.Close()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	answered := make(chan *dns.Msg, 1)
	go func() {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("web.", dns.TypeA)
		r, _, err := c.Exchange(m, udpAddr)
		if err != nil {
			t.Errorf("query sent during the handover: %v", err)
		}
		answered <- r
	}()
	time.Sleep(200 * time.Millisecond) // the query waits in the socket
	s, err := Listen(context.Background(), Config{Addr: "127.0.0.1:0", Sockets: &socks})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Add("c1", netip.MustParseAddr("10.0.0.5"), "web")
	if got := s.udp.PacketConn.LocalAddr().String(); got != udpAddr {
		t.Fatalf("udp on %s, want the handed-over %s", got, udpAddr)
	}
	if got := s.tcp.Listener.Addr().String(); got != tcpAddr {
		t.Fatalf("tcp on %s, want the handed-over %s", got, tcpAddr)
	}
	if r := <-answered; r == nil {
		t.Fatal("the query sent during the handover was not answered")
	}
	if got := addrs(query(t, s, "tcp", "web", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Fatalf("tcp answer %v", got)
	}
	if got := addrs(query(t, s, "udp", "web", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Fatalf("udp answer %v", got)
	}
}
