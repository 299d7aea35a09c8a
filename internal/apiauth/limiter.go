package apiauth

import (
	"sync"
	"time"
)

// Limiter counts authentication failures per remote address: after Max
// failures within Window, the address is refused until the oldest of
// them is Window old. Its clock is injected (Now), so tests are exact.
type Limiter struct {
	Max    int
	Window time.Duration
	Now    func() time.Time

	mu   sync.Mutex
	fail map[string][]time.Time // recent failures, oldest first, at most Max
}

// NewLimiter returns a limiter of max failures per window on the wall
// clock.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{Max: max, Window: window, Now: time.Now}
}

// Blocked reports whether addr is refused now, and for how long more.
func (l *Limiter) Blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.recent(addr)
	if len(ts) < l.Max {
		return 0, false
	}
	return ts[0].Add(l.Window).Sub(l.Now()), true
}

// Fail records a failure from addr and reports whether it is the one
// that makes addr blocked.
func (l *Limiter) Fail(addr string) (nowBlocked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail == nil {
		l.fail = map[string][]time.Time{}
	}
	if len(l.fail) > 4096 { // bound memory: forget quiet addresses
		for a := range l.fail {
			if len(l.recent(a)) == 0 {
				delete(l.fail, a)
			}
		}
	}
	ts := append(l.recent(addr), l.Now())
	if len(ts) > l.Max {
		ts = ts[len(ts)-l.Max:]
	}
	l.fail[addr] = ts
	return len(ts) == l.Max
}

// recent drops addr's failures older than Window and returns the rest.
func (l *Limiter) recent(addr string) []time.Time {
	ts := l.fail[addr]
	cut := l.Now().Add(-l.Window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fail, addr)
	} else {
		l.fail[addr] = ts
	}
	return ts
}
