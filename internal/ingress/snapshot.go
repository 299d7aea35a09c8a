package ingress

import (
	"fmt"
	"net/http/httputil"
	"time"
)

// snapshot is one immutable, compiled routing table. ServeHTTP reads it
// through an atomic pointer; Update builds a new one and swaps it in.
type snapshot struct {
	hosts     map[string][]*route // by host name, longest prefix first
	revisions map[string]*revisionState
}

// route is a compiled Route.
type route struct {
	app          *appState
	prefix       string
	timeout      time.Duration
	queueTimeout time.Duration
	maxQueue     int64
	backends     []*backend // all, in table order
	weighted     []*backend // those with a share of traffic
	cum          []int      // cumulative percents of weighted

	// Messages of the answers the ingress gives itself, built once.
	msgTimeout      string
	msgQueueFull    string
	msgQueueTimeout string
	msgShutdown     string
	msgBodyStalled  string
	msgBodyTimeout  string
	msgUnavailable  string // Route.Unavailable
	internal        bool   // Route.Internal
	tls             *TLSFiles
	redirectHTTPS   bool
}

// backend is a compiled Backend.
type backend struct {
	rev     *revisionState
	percent int
	targets []*target
}

// target is one endpoint as a route reaches it: the endpoint's shared
// state and a reverse proxy bound to its address.
type target struct {
	ep    *endpointState
	proxy *httputil.ReverseProxy
}

// route returns the route serving host and path, or nil.
func (s *snapshot) route(host, path string) *route {
	for _, rt := range s.hosts[host] {
		if matchPrefix(path, rt.prefix) {
			return rt
		}
	}
	return nil
}

// backendFor returns the route's backend of the named revision, or nil.
func (rt *route) backendFor(revision string) *backend {
	for _, b := range rt.backends {
		if b.rev.name == revision {
			return b
		}
	}
	return nil
}

// compile builds a snapshot of t, which has been validated. It reuses the
// proxy's state objects (endpoints, revisions, apps) by name, creating
// the missing ones, and returns the set of endpoints the table holds.
// The caller holds p.mu.
func (p *Proxy) compile(t Table) (*snapshot, map[string]*endpointState) {
	s := &snapshot{
		hosts:     make(map[string][]*route),
		revisions: make(map[string]*revisionState),
	}
	live := make(map[string]*endpointState)
	for _, r := range t.Routes {
		rt := &route{
			app:          p.appState(r.App),
			timeout:      r.Timeout,
			queueTimeout: r.QueueTimeout,
			maxQueue:     int64(r.MaxQueue),
		}
		rt.prefix, _ = normalizePrefix(r.PathPrefix)
		if rt.timeout == 0 {
			rt.timeout = DefaultTimeout
		}
		if rt.queueTimeout == 0 {
			rt.queueTimeout = DefaultQueueTimeout
		}
		if rt.maxQueue == 0 {
			rt.maxQueue = DefaultMaxQueue
		}
		rt.msgTimeout = fmt.Sprintf("app %s: no answer within %s", r.App, rt.timeout)
		rt.msgQueueFull = fmt.Sprintf("app %s: too many requests waiting for a replica to start", r.App)
		rt.msgQueueTimeout = fmt.Sprintf("app %s: no replica became ready within %s", r.App, rt.queueTimeout)
		rt.msgShutdown = fmt.Sprintf("app %s: the ingress is shutting down", r.App)
		rt.msgBodyStalled = fmt.Sprintf("app %s: the request body stalled: no byte for %s", r.App, p.cfg.BodyReadTimeout)
		rt.msgBodyTimeout = fmt.Sprintf("app %s: the request body did not arrive within %s", r.App, rt.timeout)
		rt.msgUnavailable = r.Unavailable
		rt.internal = r.Internal
		rt.tls, rt.redirectHTTPS = r.TLS, r.RedirectHTTPS
		sum := 0
		for _, b := range r.Backends {
			rs := p.revisionState(b.Revision)
			s.revisions[b.Revision] = rs
			cb := &backend{rev: rs, percent: b.Percent}
			for _, e := range b.Endpoints {
				es := p.endpointState(e)
				live[e.ID] = es
				cb.targets = append(cb.targets, &target{ep: es, proxy: p.reverseProxy(r.App, rt, es)})
			}
			rt.backends = append(rt.backends, cb)
			if b.Percent > 0 {
				sum += b.Percent
				rt.weighted = append(rt.weighted, cb)
				rt.cum = append(rt.cum, sum)
			}
		}
		for _, h := range r.Hosts {
			host, _ := normalizeHost(h)
			s.hosts[host] = append(s.hosts[host], rt)
		}
	}
	for _, rs := range s.hosts {
		sortRoutes(rs)
	}
	return s, live
}

// endpointState returns the state of e, creating it when e is new or its
// address changed. The caller holds p.mu.
func (p *Proxy) endpointState(e Endpoint) *endpointState {
	if es, ok := p.endpoints[e.ID]; ok && es.addr == e.Addr {
		return es
	} else if ok {
		// Same id, new address: a new replica. Update retires the old
		// state once the new snapshot is out; it drains apart.
		p.retired = append(p.retired, es)
	}
	es := &endpointState{
		id:        e.ID,
		addr:      e.Addr,
		transport: p.newTransport(),
		up: &upstream{
			addr:        e.Addr,
			dialer:      p.dialer,
			maxIdle:     p.cfg.MaxIdleConnsPerEndpoint,
			idleTimeout: p.cfg.IdleConnTimeout,
		},
	}
	p.endpoints[e.ID] = es
	return es
}

// revisionState returns the state of the named revision, creating it if
// needed. The caller holds p.mu.
func (p *Proxy) revisionState(name string) *revisionState {
	rs, ok := p.revisions[name]
	if !ok {
		rs = &revisionState{name: name}
		p.revisions[name] = rs
	}
	return rs
}

// appState returns the state of the named app, creating it if needed. The
// caller holds p.mu.
func (p *Proxy) appState(name string) *appState {
	as, ok := p.apps[name]
	if !ok {
		as = &appState{name: name}
		p.apps[name] = as
	}
	return as
}
