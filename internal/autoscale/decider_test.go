package autoscale

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// feed records load(t) every 20ms from..to and decides every 100ms,
// returning the last decision and the decisions' distinct values.
func feed(d *Decider, from, to time.Duration, ready *int, load func(at time.Duration) float64, reqs func(at time.Duration) uint64) (Decision, []int) {
	var last Decision
	var seen []int
	for at := from; at <= to; at += 20 * time.Millisecond {
		s := Sample{Time: t0.Add(at), Load: load(at)}
		if reqs != nil {
			s.Requests = reqs(at)
		}
		d.Record(s)
		if at%(100*time.Millisecond) == 0 {
			last = d.Decide(t0.Add(at), *ready)
			if len(seen) == 0 || seen[len(seen)-1] != last.Desired {
				seen = append(seen, last.Desired)
			}
			*ready = last.Desired // replicas come up at once in this model
		}
	}
	return last, seen
}

func constant(v float64) func(time.Duration) float64 { return func(time.Duration) float64 { return v } }

func TestSteadyLoad(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		load float64
		want int
	}{
		{"under one target", Spec{Min: 1, Max: 10, Target: 100}, 40, 1},
		{"one and a half targets", Spec{Min: 1, Max: 10, Target: 100}, 150, 2},
		{"exactly three targets", Spec{Min: 1, Max: 10, Target: 10}, 30, 3},
		{"capped at max", Spec{Min: 1, Max: 3, Target: 10}, 1000, 3},
		{"min holds", Spec{Min: 2, Max: 5, Target: 100}, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.StableWindow = 10 * time.Second
			d := NewDecider(tc.spec, tc.spec.Min, t0)
			ready := max(tc.spec.Min, 1)
			got, _ := feed(d, 0, 30*time.Second, &ready, constant(tc.load), nil)
			if got.Desired != tc.want {
				t.Fatalf("desired %d, want %d (%s)", got.Desired, tc.want, got.Reason)
			}
		})
	}
}

func TestStepIsMetWithinASecond(t *testing.T) {
	d := NewDecider(Spec{Min: 1, Max: 10, Target: 100}, 1, t0)
	ready := 1
	feed(d, 0, 60*time.Second, &ready, constant(1), nil)
	// Load steps from 1 to 400 in-flight at 60s.
	var reacted time.Duration
	for at := 60 * time.Second; at <= 65*time.Second; at += 20 * time.Millisecond {
		d.Record(Sample{Time: t0.Add(at), Load: 400})
		if at%(100*time.Millisecond) == 0 {
			dec := d.Decide(t0.Add(at), ready)
			if dec.Desired >= 4 && reacted == 0 {
				reacted = at - 60*time.Second
				if !dec.Panic {
					t.Fatalf("a 400x step did not panic: %+v", dec)
				}
			}
		}
	}
	if reacted == 0 || reacted > time.Second {
		t.Fatalf("reached 4 replicas after %v, want within 1s", reacted)
	}
}

func TestNoScaleDownDuringPanicThenDown(t *testing.T) {
	spec := Spec{Min: 1, Max: 10, Target: 100, StableWindow: 6 * time.Second}
	d := NewDecider(spec, 1, t0)
	ready := 1
	feed(d, 0, 3*time.Second, &ready, constant(500), nil)
	if ready != 5 {
		t.Fatalf("after a burst: %d replicas, want 5", ready)
	}
	// Load stops: no scale-down until a stable window has passed since
	// the burst began.
	dec, _ := feed(d, 3*time.Second, 5500*time.Millisecond, &ready, constant(0), nil)
	if dec.Desired != 5 || !dec.Panic {
		t.Fatalf("scaled down during panic: %+v", dec)
	}
	dec, _ = feed(d, 5500*time.Millisecond, 30*time.Second, &ready, constant(0), nil)
	if dec.Desired != 1 || dec.Panic {
		t.Fatalf("after the load stopped: %+v, want 1 replica out of panic", dec)
	}
}

func TestScaleToZeroAfterIdle(t *testing.T) {
	spec := Spec{Min: 0, Max: 5, Target: 100, StableWindow: 4 * time.Second, IdleTimeout: 10 * time.Second}
	d := NewDecider(spec, 1, t0)
	ready := 1
	reqs := func(at time.Duration) uint64 {
		if at < 2*time.Second {
			return uint64(at / time.Millisecond)
		}
		return 2000
	}
	dec, _ := feed(d, 0, 11*time.Second, &ready, constant(0), reqs)
	if dec.Desired != 1 {
		t.Fatalf("scaled to %d before the idle timeout", dec.Desired)
	}
	dec, _ = feed(d, 11*time.Second, 13*time.Second, &ready, constant(0), reqs)
	if dec.Desired != 0 {
		t.Fatalf("not at zero after the idle timeout: %+v", dec)
	}
	// A request at zero (the activator) brings one back.
	d.Activate(t0.Add(20 * time.Second))
	if dec := d.Decide(t0.Add(20*time.Second), 0); dec.Desired != 1 {
		t.Fatalf("after activation: %+v", dec)
	}
}

func TestRPSMetric(t *testing.T) {
	spec := Spec{Min: 1, Max: 10, Metric: RPS, Target: 50, StableWindow: 5 * time.Second}
	d := NewDecider(spec, 1, t0)
	ready := 1
	// 180 requests per second.
	dec, _ := feed(d, 0, 20*time.Second, &ready, constant(0), func(at time.Duration) uint64 { return uint64(at.Seconds() * 180) })
	if dec.Desired != 4 {
		t.Fatalf("180 rps at 50 per replica: %+v", dec)
	}
}

func TestNoFlapping(t *testing.T) {
	spec := Spec{Min: 1, Max: 10, Target: 100}
	d := NewDecider(spec, 2, t0)
	ready := 2
	rng := rand.New(rand.NewPCG(1, 2))
	// Noisy load around 150 (1.5 targets): 60..240 instantaneous.
	noisy := func(time.Duration) float64 { return 60 + rng.Float64()*180 }
	feed(d, 0, 60*time.Second, &ready, noisy, nil)
	_, seen := feed(d, 60*time.Second, 180*time.Second, &ready, noisy, nil)
	if len(seen) != 1 || seen[0] != 2 {
		t.Fatalf("the replica count moved under steady noisy load: %v", seen)
	}
}

func TestIdleTimeoutCountsFromTheLastRequest(t *testing.T) {
	tests := []struct {
		name   string
		metric Metric
	}{
		{"concurrency", Concurrency},
		{"rps", RPS},
		{"cpu", CPU},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One request that takes 8s, with a 5s idle timeout: zero
			// replicas 5s after it ended, though the 60s stable window
			// still holds its load.
			spec := Spec{Min: 0, Max: 3, Metric: tc.metric, Target: 10, IdleTimeout: 5 * time.Second}
			d := NewDecider(spec, 1, t0)
			var zeroAt time.Duration
			for at := time.Duration(0); at <= 30*time.Second; at += 20 * time.Millisecond {
				s := Sample{Time: t0.Add(at), Requests: 1}
				if at < 8*time.Second {
					s.InFlight, s.Load = 1, 1
				}
				d.Record(s)
				if at%(100*time.Millisecond) == 0 {
					dec := d.Decide(t0.Add(at), 1)
					if dec.Desired == 0 && zeroAt == 0 {
						zeroAt = at
						if dec.Reason != "no requests for 5s" {
							t.Errorf("reason %q", dec.Reason)
						}
					}
					if dec.Desired != 0 && zeroAt != 0 {
						t.Fatalf("back to %d at %v after reaching zero at %v", dec.Desired, at, zeroAt)
					}
				}
			}
			if zeroAt < 13*time.Second || zeroAt > 13200*time.Millisecond {
				t.Fatalf("reached zero at %v, want 13s (8s request + 5s idle)", zeroAt)
			}
		})
	}
}

func TestLeavingPanicUnderSteadyLoadDoesNotFlap(t *testing.T) {
	// A 3s burst of 150 in flight, quiet, then a steady 60 from 40s with
	// a target of 25. The panic ends a stable window after the burst,
	// while that window still averages in the quiet time (23 in flight,
	// one replica's worth): the count must stay at the 3 the steady load
	// needs, not drop to 1 and panic back up.
	spec := Spec{Min: 1, Max: 4, Target: 25}
	d := NewDecider(spec, 1, t0)
	ready := 1
	feed(d, 0, 3*time.Second, &ready, constant(150), nil)
	if ready != 4 {
		t.Fatalf("after the burst: %d replicas, want 4 (max)", ready)
	}
	feed(d, 3*time.Second, 40*time.Second, &ready, constant(0), nil)
	var seen []int
	for at := 40 * time.Second; at <= 160*time.Second; at += 20 * time.Millisecond {
		d.Record(Sample{Time: t0.Add(at), Load: 60, InFlight: 60})
		if at%(100*time.Millisecond) == 0 {
			dec := d.Decide(t0.Add(at), ready)
			if dec.Desired < 3 {
				t.Fatalf("at %v: %d replicas for a steady 60 at 25 each (%s)", at, dec.Desired, dec.Reason)
			}
			if len(seen) == 0 || seen[len(seen)-1] != dec.Desired {
				seen = append(seen, dec.Desired)
			}
			ready = dec.Desired
		}
	}
	if len(seen) != 2 || seen[0] != 4 || seen[1] != 3 {
		t.Fatalf("replica counts under the steady load: %v, want [4 3]", seen)
	}
}
