package ingress

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// timedBody is the body of a request proxied through httputil.ReverseProxy
// (the requests with bodies): it bounds every wait for the client's
// bytes by the stall timeout, and all of them by the end of the
// exchange, with read deadlines on the client's connection. Without it,
// http.Transport's write loop waits for a stalled body forever, and the
// request stays in flight however short the route's timeout is (the
// Transport waits for its write loop before returning, even once the
// request's context is done).
//
// Read runs in the Transport's write loop, finish in the handler's
// goroutine; mu orders them, so that no read arms a deadline on the
// client's connection once the handler is done with it.
type timedBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	end   time.Time

	mu       sync.Mutex
	finished bool
	armed    bool      // a read deadline is set on the client's connection
	err      error     // the first read error other than EOF
	stalled  bool      // err is a timeout before end: the client went silent
	reading  bool      // a read of the client's body is under way
	lastRead time.Time // when the last read of the client's body returned
	complete bool      // the whole body was read
}

// timedBodyKey is the context key of a request's timedBody.
type timedBodyKey struct{}

func newTimedBody(w http.ResponseWriter, body io.ReadCloser, stall time.Duration, end time.Time) *timedBody {
	return &timedBody{body: body, rc: http.NewResponseController(w), stall: stall, end: end}
}

// Read reads from the client's body with a deadline of the stall timeout
// or the end of the exchange, whichever comes first.
func (b *timedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.finished {
		b.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	now := time.Now()
	d := now.Add(b.stall)
	if d.After(b.end) {
		d = b.end
	}
	b.armed = b.rc.SetReadDeadline(d) == nil
	b.reading = true
	b.mu.Unlock()

	n, err := b.body.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading, b.lastRead = false, time.Now()
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.complete = true
		// All of it: lift the deadline before net/http's background
		// read of the connection (which starts now) can trip on it.
		b.disarm()
		return n, err
	}
	if b.err == nil {
		b.err = err
		b.stalled = errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(b.end)
	}
	return n, err
}

// Close closes the client's body.
func (b *timedBody) Close() error { return b.body.Close() }

// finish ends the body's use by the proxy: later reads fail without
// touching the connection's deadline.
func (b *timedBody) finish() {
	b.mu.Lock()
	b.finished = true
	b.mu.Unlock()
}

// disarm lifts the read deadline; b.mu is held.
func (b *timedBody) disarm() {
	if b.armed && !b.finished {
		b.rc.SetReadDeadline(time.Time{})
		b.armed = false
	}
}

// failure returns the error the client's body failed with (nil if none),
// and whether it failed because the client went silent for the stall
// timeout (else, for a timeout, because the exchange's end came first).
//
// Once the end has passed, a body that was still being waited for at the
// end (a read under way, or one that returned after it) failed with
// os.ErrDeadlineExceeded, even when no read has reported it: the
// exchange's context ends at the same time as the read deadline, and the
// transport may give up (its write of the bytes that came last failing
// on the replica's closed connection) before the read fails.
func (b *timedBody) failure() (err error, stalled bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil && !b.complete && !time.Now().Before(b.end) &&
		(b.reading || !b.lastRead.Before(b.end)) {
		return os.ErrDeadlineExceeded, false
	}
	return b.err, b.stalled
}

var _ io.ReadCloser = (*timedBody)(nil)
