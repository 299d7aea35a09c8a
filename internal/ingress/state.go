package ingress

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
)

// endpointState is what the proxy keeps about one replica across table
// updates: its in-flight count, its removal mark and its connection pool.
// The request path touches only atomics; mu guards idle, the channel
// WaitIdle sleeps on.
type endpointState struct {
	id, addr  string
	up        *upstream       // fast path connection pool
	transport *http.Transport // for requests with bodies and upgrades

	inflight atomic.Int64
	removed  atomic.Bool
	waiters  atomic.Int32

	mu   sync.Mutex
	idle chan struct{} // closed when inflight drops to 0 while waiters > 0
}

// acquire counts a request against the endpoint. It fails when the
// endpoint was removed from the table after the caller's snapshot was
// taken; the caller then picks again from the current snapshot. Counting
// first and checking the mark second is what lets WaitIdle trust a zero:
// Update sets the mark before WaitIdle can read the count.
func (e *endpointState) acquire() bool {
	e.inflight.Add(1)
	if e.removed.Load() {
		e.release()
		return false
	}
	return true
}

// release ends a request counted by acquire.
func (e *endpointState) release() {
	if e.inflight.Add(-1) != 0 {
		return
	}
	if e.removed.Load() {
		// The last request of a removed replica is done: its pooled
		// connections will never be used again.
		e.closeIdle()
	}
	if e.waiters.Load() > 0 {
		e.mu.Lock()
		if e.idle != nil {
			close(e.idle)
			e.idle = nil
		}
		e.mu.Unlock()
	}
}

// closeIdle closes the endpoint's pooled connections; once the endpoint
// is removed, connections that come back to the pool are closed too.
func (e *endpointState) closeIdle() { e.closeIdleConns(e.removed.Load()) }

// closeIdleConns closes the pooled connections; with final, connections
// that come back later are closed too.
func (e *endpointState) closeIdleConns(final bool) {
	e.up.closeIdle(final)
	e.transport.CloseIdleConnections()
}

// waitIdle blocks until the endpoint has no request in flight or ctx is
// done.
func (e *endpointState) waitIdle(ctx context.Context) error {
	e.waiters.Add(1)
	defer e.waiters.Add(-1)
	for {
		e.mu.Lock()
		if e.inflight.Load() == 0 {
			e.mu.Unlock()
			return nil
		}
		if e.idle == nil {
			e.idle = make(chan struct{})
		}
		ch := e.idle
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// revisionState holds one revision's counters across table updates, and
// the channel its held requests sleep on.
type revisionState struct {
	name     string
	inflight atomic.Int64  // proxied + held
	queued   atomic.Int64  // held
	requests atomic.Uint64 // routed to this revision, ever

	mu   sync.Mutex
	wake chan struct{} // closed by Update when the revision gets endpoints
}

// wakeChan returns the channel the next Update that gives the revision
// endpoints will close.
func (r *revisionState) wakeChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return r.wake
}

// wakeAll releases every request held for the revision.
func (r *revisionState) wakeAll() {
	r.mu.Lock()
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// appState holds what is shared by all routes of one app: the count of
// its held requests.
type appState struct {
	name   string
	queued atomic.Int64
}

// RevisionStats are one revision's request counters, as the ingress
// measures them.
type RevisionStats struct {
	// InFlight counts requests being proxied to the revision's replicas
	// plus those held waiting for a replica: the concurrency an
	// autoscaler sizes the revision by.
	InFlight int64
	// Queued counts the requests held waiting for a replica.
	Queued int64
	// Requests counts the requests routed to the revision since the
	// revision entered the table; it only grows, so its rate is the
	// revision's request rate.
	Requests uint64
}

func (r *revisionState) stats() RevisionStats {
	return RevisionStats{
		InFlight: r.inflight.Load(),
		Queued:   r.queued.Load(),
		Requests: r.requests.Load(),
	}
}
