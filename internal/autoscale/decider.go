package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Metric is the load measure a revision is scaled on.
type Metric int

// The metrics.
const (
	Concurrency Metric = iota // in-flight requests
	RPS                       // requests per second
	CPU                       // percent of the CPU limit
	Memory                    // percent of the memory limit
)

func (m Metric) String() string {
	return [...]string{"concurrency", "rps", "cpu", "memory"}[m]
}

// Spec is how a revision scales.
type Spec struct {
	Min, Max int
	Metric   Metric
	// Target is the load one replica should carry, in the Metric's unit.
	Target float64
	// StableWindow is the averaging window of normal decisions (default 60s).
	StableWindow time.Duration
	// PanicWindow is the averaging window that detects bursts (default 1s).
	PanicWindow time.Duration
	// PanicThreshold is the ratio of panic-window replicas to ready
	// replicas that starts a panic (default 2).
	PanicThreshold float64
	// IdleTimeout: with Min 0, this long without requests scales to zero
	// (default 60s).
	IdleTimeout time.Duration
}

func (s *Spec) defaults() {
	if s.StableWindow <= 0 {
		s.StableWindow = 60 * time.Second
	}
	if s.PanicWindow <= 0 {
		s.PanicWindow = time.Second
	}
	if s.PanicWindow > s.StableWindow {
		s.PanicWindow = s.StableWindow
	}
	if s.PanicThreshold <= 0 {
		s.PanicThreshold = 2
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 60 * time.Second
	}
	if s.Target <= 0 {
		s.Target = 100
	}
	if s.Max < s.Min {
		s.Max = s.Min
	}
}

// Sample is one observation of a revision's load.
type Sample struct {
	Time time.Time
	// Load is the instantaneous value of the Spec's Metric: in-flight
	// requests, or the summed CPU or memory percent of all replicas. For
	// RPS it is ignored; Requests is used.
	Load float64
	// Requests counts requests routed to the revision, ever (monotonic).
	Requests uint64
	// InFlight is the number of requests being served now, whatever the
	// Metric: while any is, the revision is not idle.
	InFlight int
}

// bucket aggregates the samples of one bucket interval.
type bucket struct {
	start    time.Time
	sum      float64
	n        int
	requests uint64 // the counter at the bucket's last sample
}

const bucketWidth = 100 * time.Millisecond

// Decider keeps a revision's recent load and decides its replica count.
// It is not safe for concurrent use.
type Decider struct {
	spec       Spec
	buckets    []bucket // oldest first, within the stable window
	lastReq    uint64
	lastActive time.Time // last time a request arrived (or the decider began)
	panicSince time.Time // zero when not panicking
	desired    int
}

// NewDecider returns a decider for spec, starting at current replicas,
// with now as the time of its last activity.
func NewDecider(spec Spec, current int, now time.Time) *Decider {
	spec.defaults()
	return &Decider{spec: spec, desired: current, lastActive: now}
}

// Spec returns the decider's spec with defaults applied.
func (d *Decider) Spec() Spec { return d.spec }

// SetSpec changes the spec, keeping the observed load.
func (d *Decider) SetSpec(spec Spec) {
	spec.defaults()
	d.spec = spec
}

// Record adds an observation.
func (d *Decider) Record(s Sample) {
	if s.Requests != d.lastReq || s.InFlight > 0 || s.Load > 0 && d.spec.Metric == Concurrency {
		d.lastActive = s.Time
	}
	d.lastReq = s.Requests
	start := s.Time.Truncate(bucketWidth)
	if n := len(d.buckets); n > 0 && d.buckets[n-1].start.Equal(start) {
		b := &d.buckets[n-1]
		b.sum += s.Load
		b.n++
		b.requests = s.Requests
	} else {
		d.buckets = append(d.buckets, bucket{start: start, sum: s.Load, n: 1, requests: s.Requests})
	}
	// Forget what is older than the stable window.
	cut := s.Time.Add(-d.spec.StableWindow - bucketWidth)
	i := 0
	for i < len(d.buckets) && d.buckets[i].start.Before(cut) {
		i++
	}
	d.buckets = d.buckets[i:]
}

// average returns the mean load over the window ending at now, and
// whether the window holds any data.
func (d *Decider) average(now time.Time, window time.Duration) (float64, bool) {
	from := now.Add(-window)
	if d.spec.Metric == RPS {
		var first, last *bucket
		for i := range d.buckets {
			b := &d.buckets[i]
			if b.start.Before(from) {
				first = b // the newest bucket before the window: its counter is the window's start
				continue
			}
			if first == nil {
				first = b
			}
			last = b
		}
		if first == nil || last == nil || !last.start.After(first.start) {
			return 0, false
		}
		secs := last.start.Sub(first.start).Seconds()
		return float64(last.requests-first.requests) / secs, true
	}
	var sum float64
	n := 0
	for _, b := range d.buckets {
		if b.start.Before(from) || b.n == 0 {
			continue
		}
		sum += b.sum / float64(b.n)
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// Decision is the decider's answer.
type Decision struct {
	// Desired is the number of replicas the revision should have.
	Desired int
	// Panic is true while bursts are being met.
	Panic bool
	// Reason explains Desired for people.
	Reason string
}

func ceilDiv(load, target float64) int {
	if load <= 0 {
		return 0
	}
	return int(math.Ceil(load/target - 1e-9))
}

// Decide returns the replica count for now, given the ready replicas.
func (d *Decider) Decide(now time.Time, ready int) Decision {
	s := d.spec
	stable, haveStable := d.average(now, s.StableWindow)
	panicLoad, havePanic := d.average(now, s.PanicWindow)
	stableWant := ceilDiv(stable, s.Target)
	panicWant := ceilDiv(panicLoad, s.Target)
	unit := s.Metric.String()

	desired := d.desired
	reason := ""
	idle := s.Min == 0 && now.Sub(d.lastActive) >= s.IdleTimeout
	switch {
	case idle:
		// The idle timeout counts from the end of the last request,
		// whatever the windows still remember of the load before it.
		desired, d.panicSince = 0, time.Time{}
		reason = fmt.Sprintf("no requests for %s", s.IdleTimeout)
	case !haveStable && !havePanic:
		reason = "no load measured yet"
	default:
		base := max(ready, 1)
		burst := havePanic && float64(panicWant)/float64(base) >= s.PanicThreshold
		if burst && d.panicSince.IsZero() {
			d.panicSince = now
		} else if !burst && !d.panicSince.IsZero() && now.Sub(d.panicSince) >= s.StableWindow {
			d.panicSince = time.Time{}
		}
		if burst {
			d.panicSince = now // a burst extends the panic
		}
		if !d.panicSince.IsZero() {
			desired = max(d.desired, panicWant, stableWant)
			reason = fmt.Sprintf("panic: %.1f %s over the last %s for a target of %g per replica", panicLoad, unit, s.PanicWindow, s.Target)
		} else {
			desired = stableWant
			reason = fmt.Sprintf("%.1f %s over the last %s for a target of %g per replica", stable, unit, s.StableWindow, s.Target)
			// A scale-down never goes below what the load of this moment
			// needs: the stable window may still average in the quiet
			// time before a load that is now steady, and scaling under it
			// would only panic back up.
			if floor := min(panicWant, d.desired); havePanic && desired < floor {
				desired = floor
				reason = fmt.Sprintf("%.1f %s over the last %s holds %d replicas for a target of %g per replica", panicLoad, unit, s.PanicWindow, floor, s.Target)
			}
		}
	}
	// Until the idle timeout, a revision with no load keeps one replica.
	if desired == 0 && !idle {
		desired = 1
	}
	if desired < s.Min {
		desired = s.Min
	}
	if desired > s.Max {
		desired = s.Max
		reason += fmt.Sprintf(" (capped at max %d)", s.Max)
	}
	d.desired = desired
	return Decision{Desired: desired, Panic: !d.panicSince.IsZero(), Reason: reason}
}

// Activate records that a request is waiting for a revision at zero
// replicas: it counts as activity, and the decider wants at least one.
func (d *Decider) Activate(now time.Time) {
	d.lastActive = now
	if d.desired < 1 {
		d.desired = 1
	}
}
