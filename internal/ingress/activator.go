package ingress

import (
	"context"
	"net/http"
	"time"
)

// Activator starts replicas on demand (scale from zero). The Proxy calls
// it when a request is routed to a backend that has no endpoint.
type Activator interface {
	// Activate asks for a ready replica of the app's revision and returns
	// at once; the replica shows up later as an endpoint in an Update,
	// which releases the held requests. ctx carries the request's values
	// but is never canceled: the activation outlives the request.
	//
	// Dedup contract: the Proxy calls Activate when a request starts
	// waiting for a revision nobody was waiting for; requests that arrive
	// while others wait do not call it again. It calls again once every
	// held request of the revision is gone (released, timed out or
	// canceled) and a new one waits. Activate must still be idempotent
	// and cheap: a call can come while a replica is starting (after held
	// requests timed out, or right after the last endpoint was removed),
	// and it must then not start another one.
	Activate(ctx context.Context, app, revision string)
}

// hold makes r wait until the revision of b has an endpoint, asking the
// activator for one. It returns the route and backend to proxy r to, from
// the current table, or ok false once it has answered r itself (503 when
// the queue is full, the wait timed out, the route says the app is
// unavailable or the proxy is shutting down;
// 404 when the table dropped the route; nothing when the client left).
func (p *Proxy) hold(w http.ResponseWriter, r *http.Request, host string, rt *route, b *backend) (_ *route, _ *backend, ok bool) {
	if rt.msgUnavailable != "" {
		writeError(w, http.StatusServiceUnavailable, rt.msgUnavailable)
		return nil, nil, false
	}
	app := rt.app
	if app.queued.Add(1) > rt.maxQueue {
		app.queued.Add(-1)
		writeError(w, http.StatusServiceUnavailable, rt.msgQueueFull)
		return nil, nil, false
	}
	defer app.queued.Add(-1)
	timer := time.NewTimer(rt.queueTimeout)
	defer timer.Stop()
	msgTimeout := rt.msgQueueTimeout
	msgShutdown := rt.msgShutdown

	rs := p.enqueue(r, app.name, b.rev)
	defer func() { rs.queued.Add(-1) }()
	for {
		// Take the channel before reading the table: an Update that
		// lands in between closes it.
		wake := rs.wakeChan()
		rt = p.snap.Load().route(host, r.URL.Path)
		if rt == nil {
			p.notFound(w, host, r.URL.Path)
			return nil, nil, false
		}
		if b = rt.backendFor(rs.name); b == nil {
			// The revision left the route while we waited: choose again.
			b = rt.pick()
			if b.rev != rs {
				rs.queued.Add(-1)
				rs = p.enqueue(r, app.name, b.rev)
				continue
			}
		}
		if len(b.targets) > 0 {
			return rt, b, true
		}
		if rt.msgUnavailable != "" {
			writeError(w, http.StatusServiceUnavailable, rt.msgUnavailable)
			return nil, nil, false
		}
		select {
		case <-wake:
		case <-timer.C:
			writeError(w, http.StatusServiceUnavailable, msgTimeout)
			return nil, nil, false
		case <-p.closed:
			if !p.passHeld(w, r, rt) {
				writeError(w, http.StatusServiceUnavailable, msgShutdown)
			}
			return nil, nil, false
		case <-r.Context().Done():
			return nil, nil, false
		}
	}
}

// enqueue counts a held request against rs and, when it is the only one,
// asks the activator for a replica.
func (p *Proxy) enqueue(r *http.Request, app string, rs *revisionState) *revisionState {
	if rs.queued.Add(1) == 1 && p.cfg.Activator != nil {
		p.cfg.Activator.Activate(context.WithoutCancel(r.Context()), app, rs.name)
	}
	return rs
}
