package ingress

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// DefaultAddr is the address the ingress listens on when Config.Addr is
// empty.
const DefaultAddr = "127.0.0.1:8080"

// Config configures a Proxy. Zero fields take the defaults named beside
// them.
type Config struct {
	// Addr is the "host:port" Start listens on; DefaultAddr if empty.
	Addr string
	// Activator is asked for a replica when a request is held; nil means
	// held requests only wait for an Update.
	Activator Activator
	// Logger receives failures of replicas and of the listener; nil means
	// slog.Default().
	Logger *slog.Logger

	// DialTimeout bounds connecting to a replica; 5s.
	DialTimeout time.Duration
	// MaxIdleConnsPerEndpoint bounds the kept-alive connections pooled
	// per replica; 1024.
	MaxIdleConnsPerEndpoint int
	// IdleConnTimeout closes pooled replica connections unused this long; 90s.
	IdleConnTimeout time.Duration
	// ReadHeaderTimeout bounds reading a client's request header; 10s.
	ReadHeaderTimeout time.Duration
	// ClientIdleTimeout closes idle client connections; 120s.
	ClientIdleTimeout time.Duration
	// Local reports whether a client address belongs to this machine (one
	// of the host's addresses, or a container on its networks); routes
	// marked Internal answer only such clients and loopback ones. nil
	// means loopback clients only.
	Local func(netip.Addr) bool
	// BodyReadTimeout bounds each wait for more bytes of a request body:
	// a client whose body stalls longer is answered 408 and its request
	// ends; 30s. The route's Timeout bounds the whole body as well.
	BodyReadTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.MaxIdleConnsPerEndpoint == 0 {
		c.MaxIdleConnsPerEndpoint = 1024
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = 90 * time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ClientIdleTimeout == 0 {
		c.ClientIdleTimeout = 120 * time.Second
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = 30 * time.Second
	}
}

// Proxy is the ingress: an http.Handler that routes each request by host
// and path to a ready replica, and the server that listens for it. It is
// safe for concurrent use.
type Proxy struct {
	cfg      Config
	log      *slog.Logger
	debugLog *log.Logger // for net/http's own messages
	dialer   *net.Dialer
	bufs     bufferPool

	snap atomic.Pointer[snapshot]
	// noFastPath sends every request through httputil.ReverseProxy (for
	// tests and benchmarks of both paths).
	noFastPath bool

	// mu serializes Update and guards the state registries below; the
	// request path never takes it.
	mu        sync.Mutex
	endpoints map[string]*endpointState
	retired   []*endpointState // replaced (same id, new address), still draining
	revisions map[string]*revisionState
	apps      map[string]*appState

	closed    chan struct{} // closed by Shutdown and Close
	lnClosed  chan struct{} // closed once the listeners are
	closeOnce sync.Once
	succ      atomic.Pointer[successor] // see HandOver
	acceptWG  sync.WaitGroup            // the front's accept loops
	srvMu     sync.Mutex
	std       *stdServer // serves what the front hands over, and h2c
	ln        net.Listener
	tlsStd    *stdServer   // serves TLS connections the front does not (HTTP/2)
	tlsLn     net.Listener // ServeTLS's
	tlsPort   atomic.Int32 // the TLS listener's port, 0 without one
	// noFront makes net/http serve every connection (for tests and
	// benchmarks of both servers).
	noFront bool

	// The front's connections, for Shutdown and Close.
	connsMu      sync.Mutex
	conns        map[*frontConn]struct{}
	connsWG      sync.WaitGroup
	frontClosed  bool        // no new connections
	frontClosing atomic.Bool // connections close once idle
}

// New returns a Proxy with an empty table: every request gets 404 until
// Update installs routes.
func New(cfg Config) (*Proxy, error) {
	cfg.setDefaults()
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, errdefs.Invalid("ingress: address %q is not host:port (e.g. 127.0.0.1:8080 or :80)", cfg.Addr)
	}
	if cfg.DialTimeout < 0 || cfg.MaxIdleConnsPerEndpoint < 0 || cfg.IdleConnTimeout < 0 ||
		cfg.ReadHeaderTimeout < 0 || cfg.ClientIdleTimeout < 0 || cfg.BodyReadTimeout < 0 {
		return nil, errdefs.Invalid("ingress: timeouts and connection limits must not be negative")
	}
	p := &Proxy{
		cfg:       cfg,
		log:       cfg.Logger,
		debugLog:  slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		dialer:    &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		endpoints: make(map[string]*endpointState),
		revisions: make(map[string]*revisionState),
		apps:      make(map[string]*appState),
		closed:    make(chan struct{}),
		lnClosed:  make(chan struct{}),
		conns:     make(map[*frontConn]struct{}),
	}
	p.snap.Store(&snapshot{})
	return p, nil
}

// Update validates t and makes it the routing table at once: requests that
// arrive after Update returns are routed by t, requests in flight finish
// on the replicas they were sent to. Endpoints absent from t get no new
// requests once Update returns (see WaitIdle). Requests held for a
// revision that t gives endpoints are released. An invalid table is an
// ErrInvalid error naming the route and field, and changes nothing.
func (p *Proxy) Update(t Table) error {
	if err := t.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	snap, live := p.compile(t)
	for _, es := range live {
		es.removed.Store(false)
	}
	p.snap.Store(snap)

	// From here on no request can reach a removed endpoint: those that
	// took the old snapshot fail acquire and route again on the new one.
	for id, es := range p.endpoints {
		if live[id] == es {
			continue
		}
		es.removed.Store(true)
		if es.inflight.Load() == 0 {
			es.closeIdle()
			delete(p.endpoints, id)
		}
	}
	kept := p.retired[:0]
	for _, es := range p.retired {
		es.removed.Store(true)
		if es.inflight.Load() == 0 {
			es.closeIdle()
			continue
		}
		kept = append(kept, es)
	}
	clear(p.retired[len(kept):])
	p.retired = kept
	for name, rs := range p.revisions {
		if snap.revisions[name] == nil && rs.inflight.Load() == 0 {
			delete(p.revisions, name)
			continue
		}
		// Held requests look at the new table: they proceed if their
		// revision has endpoints now, follow the traffic if it left
		// the route, or go back to sleep.
		if rs.queued.Load() > 0 {
			rs.wakeAll()
		}
	}
	inTable := make(map[*appState]bool)
	for _, rts := range snap.hosts {
		for _, rt := range rts {
			inTable[rt.app] = true
		}
	}
	for name, as := range p.apps {
		if !inTable[as] && as.queued.Load() == 0 {
			delete(p.apps, name)
		}
	}
	return nil
}

// InFlight returns the number of requests being proxied to the endpoint
// now, including after its removal from the table; 0 for an unknown id.
func (p *Proxy) InFlight(endpointID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := int64(0)
	if es, ok := p.endpoints[endpointID]; ok {
		n += es.inflight.Load()
	}
	for _, es := range p.retired {
		if es.id == endpointID {
			n += es.inflight.Load()
		}
	}
	return int(n)
}

// WaitIdle blocks until no request is in flight to the endpoint, or ctx
// is done (it then returns ctx's error). It is how a replica is drained:
// remove its endpoint with Update, call WaitIdle with a deadline, then
// stop the replica. An unknown id is idle.
func (p *Proxy) WaitIdle(ctx context.Context, endpointID string) error {
	p.mu.Lock()
	var states []*endpointState
	if es, ok := p.endpoints[endpointID]; ok {
		states = append(states, es)
	}
	for _, es := range p.retired {
		if es.id == endpointID {
			states = append(states, es)
		}
	}
	p.mu.Unlock()
	for _, es := range states {
		if err := es.waitIdle(ctx); err != nil {
			return errdefs.WithCategory(errdefs.ErrUnavailable,
				errors.Join(errors.New("ingress: endpoint "+endpointID+" still has requests in flight"), err))
		}
	}
	return nil
}

// RevisionStats returns the revision's counters; zero for a revision the
// proxy does not know (never routed, or gone from the table and idle).
func (p *Proxy) RevisionStats(revision string) RevisionStats {
	if rs := p.snap.Load().revisions[revision]; rs != nil {
		return rs.stats()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if rs := p.revisions[revision]; rs != nil {
		return rs.stats()
	}
	return RevisionStats{}
}

// Stats returns the counters of every revision in the table and of those
// that left it with requests still in flight.
func (p *Proxy) Stats() map[string]RevisionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]RevisionStats, len(p.revisions))
	for name, rs := range p.revisions {
		out[name] = rs.stats()
	}
	return out
}

// maxReroutes bounds how often one request is routed again because its
// endpoint was removed between choosing and counting it.
const maxReroutes = 8

// ServeHTTP routes r to a replica of the app serving its host and path.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := requestHost(r.Host)
	if !isCleanPath(r.URL.Path) {
		r = withCleanPath(r)
	}
	path := r.URL.Path
	if closeAfter(r) {
		w.Header().Set("Connection", "close")
	}
	rt := p.snap.Load().route(host, path)
	if rt == nil || rt.internal && !p.local(r.RemoteAddr) {
		// An internal app is unknown to clients from elsewhere.
		p.notFound(w, host, path)
		return
	}
	if rt.redirectHTTPS && r.TLS == nil {
		if port := p.tlsPort.Load(); port != 0 {
			redirectHTTPS(w, r, host, int(port))
			return
		}
	}
	b := rt.pick()
	rs := b.rev
	rs.requests.Add(1)
	rs.inflight.Add(1)
	defer func() { rs.inflight.Add(-1) }()

	for range maxReroutes {
		if len(b.targets) == 0 {
			var ok bool
			if rt, b, ok = p.hold(w, r, host, rt, b); !ok {
				return
			}
			if b.rev != rs {
				rs.inflight.Add(-1)
				rs = b.rev
				rs.inflight.Add(1)
			}
		}
		if p.forward(w, r, rt, b.choose()) {
			return
		}
		// The chosen endpoint left the table after the snapshot was read.
		if rt = p.snap.Load().route(host, path); rt == nil {
			p.notFound(w, host, path)
			return
		}
		if b = rt.backendFor(rs.name); b == nil {
			b = rt.pick()
			rs.inflight.Add(-1)
			rs = b.rev
			rs.inflight.Add(1)
		}
	}
	writeError(w, http.StatusServiceUnavailable, "app "+rt.app.name+": the route changed too often while choosing a replica; retry")
}

// closeAfter reports whether the client's connection must close after
// the answer to r: an HTTP/1 request with a Transfer-Encoding may have
// come with a Content-Length too, and then RFC 9112 §6.1 requires the
// close (a peer in front of the ingress may have framed the body by the
// other header). net/http drops the Content-Length before a handler sees
// the request, so every such request closes.
func closeAfter(r *http.Request) bool {
	return r.ProtoMajor == 1 && len(r.TransferEncoding) > 0
}

// forward proxies r to t under the route's timeout. It returns false,
// without touching w, when t's endpoint was removed from the table.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rt *route, t *target) bool {
	if !t.ep.acquire() {
		return false
	}
	defer t.ep.release()
	if _, onFront := w.(*frontResponse); !onFront {
		// The timeout bounds writing the response to the client too
		// (serveFast does it for the front).
		rc := http.NewResponseController(w)
		if rc.SetWriteDeadline(time.Now().Add(rt.timeout+writeGrace)) == nil {
			defer rc.SetWriteDeadline(time.Time{})
		}
	}
	if !p.noFastPath && fastPathOK(r) {
		p.serveFast(w, r, rt, t)
		return true
	}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(r.Context(), settleTrace), rt.timeout)
	defer cancel()
	var body *timedBody
	if r.Body != nil && r.Body != http.NoBody {
		// The timeout bounds the client's body too, and a body that
		// stalls ends the request sooner.
		end, _ := ctx.Deadline()
		body = newTimedBody(w, r.Body, p.cfg.BodyReadTimeout, end)
		defer body.finish()
		ctx = context.WithValue(ctx, timedBodyKey{}, body)
	}
	r = r.WithContext(ctx)
	if body != nil {
		r.Body = body
	}
	t.proxy.ServeHTTP(w, r)
	return true
}

var _ http.Handler = (*Proxy)(nil)

// local reports whether the client at remote ("ip:port") may reach
// internal routes: a loopback client, or one Config.Local accepts.
func (p *Proxy) local(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	return ip.IsLoopback() || p.cfg.Local != nil && p.cfg.Local(ip)
}
