// Package dns is the DNS server of one skiff network.
//
// Contract: a Server listens on one address (the network's gateway, port
// 53, UDP and TCP) and answers, with authority, the names registered with
// Add: A queries get one record per registered address (several
// containers may share a name, one record each, in random order), other
// types for a registered name get an empty answer, and PTR queries for a
// registered address get its first name. Every other query is forwarded
// to the upstream resolvers (the host's, from /etc/resolv.conf) from the
// daemon itself, so upstreams on the host's loopback work too; a Server
// made without upstreams (an internal network) refuses them. A client
// on several networks (Config.Also) also gets the names of its other
// networks' servers, as if they were this server's, before forwarding;
// on a server without upstreams, its queries for other names go to the
// upstreams of its first other network that has some.
//
// Names are matched case-insensitively, without a trailing dot.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TTL is the time to live of the records a Server answers with. Short:
// containers come and go.
const TTL = 5

// ForwardTimeout bounds the wait for one upstream.
const ForwardTimeout = 2 * time.Second

// Config says where a Server listens and forwards.
type Config struct {
	// Addr is the address to listen on, "ip:port".
	Addr string
	// Upstreams are the resolvers ("ip:port") other queries go to, tried
	// in order. None means other queries are refused.
	Upstreams []string
	// Sockets, when set, are bound sockets to serve on instead of binding
	// Addr: those of a server in the process this one takes over from.
	Sockets *Sockets
	// Also, when set, returns the servers of the client's other
	// networks (none for a client on this network only), whose names
	// the client resolves too when this server has no answer of its
	// own. It is called without the server's lock held.
	Also   func(client netip.Addr) []*Server
	Logger *slog.Logger
}

// Sockets are a Server's bound UDP and TCP sockets as files, to hand
// them to another process: queries that arrive meanwhile wait in them.
type Sockets struct{ UDP, TCP *os.File }

// Close closes both files.
func (s Sockets) Close() {
	if s.UDP != nil {
		s.UDP.Close()
	}
	if s.TCP != nil {
		s.TCP.Close()
	}
}

type record struct {
	owner string
	ip    netip.Addr
}

// Server answers one network's queries. It is safe for concurrent use.
type Server struct {
	cfg      Config
	udp, tcp *dns.Server
	pc       net.PacketConn
	ln       net.Listener
	log      *slog.Logger
	serving  sync.WaitGroup // the goroutines serving udp and tcp

	mu     sync.RWMutex
	names  map[string][]record   // name → records
	owners map[string][]string   // owner → names
	addrs  map[netip.Addr]string // address → first name, for PTR
	ipOwn  map[netip.Addr]string // address → owner
}

// Listen starts a server on cfg.Addr. The sockets are bound and served
// before it returns, so a busy address is reported here and Close, at
// any time after, releases them.
func Listen(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, names: map[string][]record{}, owners: map[string][]string{}, addrs: map[netip.Addr]string{}, ipOwn: map[netip.Addr]string{}}
	pc, l, err := bind(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.pc, s.ln = pc, l
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: l, Handler: s, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	// Shutdown fails on a server that has not started serving yet, and
	// its socket would stay open: wait until both serve (or failed).
	var started sync.WaitGroup
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started.Add(1)
		s.serving.Add(1)
		done := sync.OnceFunc(started.Done)
		srv.NotifyStartedFunc = done
		go func() {
			defer s.serving.Done()
			defer done()
			if err := srv.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns server stopped", "addr", cfg.Addr, "err", err)
			}
		}()
	}
	started.Wait()
	return s, nil
}

// bind opens the server's sockets, or takes cfg.Sockets.
func bind(ctx context.Context, cfg Config) (net.PacketConn, net.Listener, error) {
	if cfg.Sockets != nil {
		pc, err := net.FilePacketConn(cfg.Sockets.UDP)
		if err != nil {
			return nil, nil, fmt.Errorf("DNS socket handed over for udp %s: %w", cfg.Addr, err)
		}
		l, err := net.FileListener(cfg.Sockets.TCP)
		if err != nil {
			pc.Close()
			return nil, nil, fmt.Errorf("DNS socket handed over for tcp %s: %w", cfg.Addr, err)
		}
		return pc, l, nil
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for DNS on udp %s: %w", cfg.Addr, err)
	}
	l, err := lc.Listen(ctx, "tcp4", cfg.Addr)
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("listen for DNS on tcp %s: %w", cfg.Addr, err)
	}
	return pc, l, nil
}

// Files returns copies of the server's sockets, which stay open when the
// server closes, for handing them to another process.
func (s *Server) Files() (Sockets, error) {
	type filer interface{ File() (*os.File, error) }
	udp, err := s.pc.(filer).File()
	if err != nil {
		return Sockets{}, fmt.Errorf("DNS socket of %s: %w", s.cfg.Addr, err)
	}
	tcp, err := s.ln.(filer).File()
	if err != nil {
		udp.Close()
		return Sockets{}, fmt.Errorf("DNS socket of %s: %w", s.cfg.Addr, err)
	}
	return Sockets{UDP: udp, TCP: tcp}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.cfg.Addr }

// Close stops the server. When it returns, the address is free again.
func (s *Server) Close() error {
	err1 := s.udp.Shutdown()
	err2 := s.tcp.Shutdown()
	// Shutdown and the serving goroutine both close the socket; the one
	// that loses returns before the other's close is done.
	s.serving.Wait()
	return errors.Join(err1, err2)
}

// Add registers names for ip on behalf of owner (a container ID). Names
// already registered by owner are kept.
func (s *Server) Add(owner string, ip netip.Addr, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		n = canonical(n)
		if n == "" {
			continue
		}
		dup := false
		for _, r := range s.names[n] {
			if r.owner == owner && r.ip == ip {
				dup = true
			}
		}
		if dup {
			continue
		}
		s.names[n] = append(s.names[n], record{owner: owner, ip: ip})
		s.owners[owner] = append(s.owners[owner], n)
		if _, ok := s.addrs[ip]; !ok {
			s.addrs[ip] = n
		}
		s.ipOwn[ip] = owner
	}
}

// Owner returns the owner that registered ip, or "".
func (s *Server) Owner(ip netip.Addr) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ipOwn[ip]
}

// Remove forgets every name owner registered.
func (s *Server) Remove(owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.owners[owner] {
		recs := s.names[n][:0]
		for _, r := range s.names[n] {
			if r.owner == owner {
				delete(s.addrs, r.ip)
				delete(s.ipOwn, r.ip)
				continue
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			delete(s.names, n)
		} else {
			s.names[n] = recs
		}
	}
	delete(s.owners, owner)
}

// Lookup returns the addresses registered for name.
func (s *Server) Lookup(name string) []netip.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []netip.Addr
	for _, r := range s.names[canonical(name)] {
		out = append(out, r.ip)
	}
	return out
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	if m := s.local(req); m != nil {
		s.write(w, req, m)
		return
	}
	if m := s.others(req, w.RemoteAddr()); m != nil {
		s.write(w, req, m)
		return
	}
	fwd := s
	if len(s.cfg.Upstreams) == 0 {
		fwd = s.forwarder(w.RemoteAddr())
	}
	if fwd == nil {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	s.write(w, req, fwd.forward(req, w.LocalAddr().Network()))
}

// local answers a query about a registered name or address, or returns
// nil.
func (s *Server) local(req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return nil
	}
	name := canonical(q.Name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if q.Qtype == dns.TypePTR {
		ip, ok := reverse(name)
		if !ok {
			return nil
		}
		n, ok := s.addrs[ip]
		if !ok {
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL}, Ptr: dns.Fqdn(n)})
		return m
	}
	recs, ok := s.names[name]
	if !ok {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		for _, i := range rand.Perm(len(recs)) {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL}, A: recs[i].ip.AsSlice()})
		}
	}
	return m
}

// others answers from the servers of the client's other networks (see
// Config.Also), or returns nil.
func (s *Server) others(req *dns.Msg, client net.Addr) *dns.Msg {
	if s.cfg.Also == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(client.String())
	if err != nil {
		return nil
	}
	for _, o := range s.cfg.Also(ap.Addr().Unmap()) {
		if o == s {
			continue
		}
		if m := o.local(req); m != nil {
			return m
		}
	}
	return nil
}

// forwarder is, for a server without upstreams (an internal network),
// the first server of the client's other networks that forwards: a
// client also on a network with a way out resolves outside names through
// it. Nil when there is none.
func (s *Server) forwarder(client net.Addr) *Server {
	if s.cfg.Also == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(client.String())
	if err != nil {
		return nil
	}
	for _, o := range s.cfg.Also(ap.Addr().Unmap()) {
		if o != s && len(o.cfg.Upstreams) > 0 {
			return o
		}
	}
	return nil
}

// reverse parses an in-addr.arpa name.
func reverse(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	return ip, err == nil
}

// forward asks the upstreams in order and returns the first answer, or
// SERVFAIL when none answers.
func (s *Server) forward(req *dns.Msg, network string) *dns.Msg {
	proto := "udp"
	if strings.HasPrefix(network, "tcp") {
		proto = "tcp"
	}
	for _, up := range s.cfg.Upstreams {
		c := &dns.Client{Net: proto, Timeout: ForwardTimeout}
		resp, _, err := c.Exchange(req, up)
		if err == nil && resp.Truncated && proto == "udp" {
			c.Net = "tcp"
			resp, _, err = c.Exchange(req, up)
		}
		if err != nil {
			s.log.Debug("dns forward failed", "upstream", up, "name", req.Question[0].Name, "err", err)
			continue
		}
		resp.Id = req.Id
		return resp
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	return m
}

// write sends m, truncated to what the client accepts over UDP.
func (s *Server) write(w dns.ResponseWriter, req, m *dns.Msg) {
	if strings.HasPrefix(w.LocalAddr().Network(), "udp") {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	m.Compress = true
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns reply failed", "err", err)
	}
}
