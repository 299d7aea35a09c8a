package controller

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/autoscale"
)

// Annotations that tune the autoscaler of an App (Knative has the same
// knobs as annotations).
const (
	// AnnotationWindow is the stable window, e.g. "60s".
	AnnotationWindow = "autoscaling.skiff.dev/window"
	// AnnotationPanicWindow is the panic window, e.g. "1s".
	AnnotationPanicWindow = "autoscaling.skiff.dev/panic-window"
	// AnnotationActivatorQueue bounds the requests held while an App has
	// no ready replica; AnnotationActivatorTimeout bounds their wait.
	AnnotationActivatorQueue   = "ingress.skiff.dev/activator-queue"
	AnnotationActivatorTimeout = "ingress.skiff.dev/activator-timeout"
)

const (
	sampleEvery = 20 * time.Millisecond
	decideEvery = 100 * time.Millisecond
	statsEvery  = 500 * time.Millisecond
)

// scaleSpec turns an App's scale settings into the decider's spec.
func scaleSpec(a api.App) autoscale.Spec {
	lo, hi := scaleBounds(a)
	sc := a.Spec.Scale
	s := autoscale.Spec{Min: lo, Max: hi, Metric: autoscale.Concurrency, Target: float64(sc.Concurrency), IdleTimeout: sc.IdleTimeout.Duration}
	switch {
	case sc.RPS > 0:
		s.Metric, s.Target = autoscale.RPS, float64(sc.RPS)
	case sc.CPUUtilization > 0:
		s.Metric, s.Target = autoscale.CPU, float64(sc.CPUUtilization)
	case sc.MemoryUtilization > 0:
		s.Metric, s.Target = autoscale.Memory, float64(sc.MemoryUtilization)
	}
	if d, err := time.ParseDuration(a.Metadata.Annotations[AnnotationWindow]); err == nil && d > 0 {
		s.StableWindow = d
	}
	if d, err := time.ParseDuration(a.Metadata.Annotations[AnnotationPanicWindow]); err == nil && d > 0 {
		s.PanicWindow = d
	}
	return s
}

// scaler is the autoscaling state of one revision.
type scaler struct {
	dec       *autoscale.Decider
	lastStats map[string]api.ContainerStats // replica → previous sample (cpu)
	util      float64                       // last utilization sum, percent
	lastDec   autoscale.Decision
}

// autoscaleLoop samples each routed revision's load and re-decides its
// replica count, until the controller stops.
func (c *Controller) autoscaleLoop() {
	defer c.wg.Done()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	var lastDecide, lastStats time.Time
	for {
		select {
		case <-c.bg.Done():
			return
		case now := <-t.C:
			decide := now.Sub(lastDecide) >= decideEvery
			stats := now.Sub(lastStats) >= statsEvery
			if decide {
				lastDecide = now
			}
			if stats {
				lastStats = now
			}
			c.autoscaleTick(now, decide, stats)
		}
	}
}

func (c *Controller) autoscaleTick(now time.Time, decide, sampleStats bool) {
	type statReq struct {
		sc   *scaler
		ids  []string
		lim  api.Resources
		kind autoscale.Metric
	}
	var statReqs []statReq
	c.mu.Lock()
	var changed []string
	for name, st := range c.apps {
		if !st.exists {
			continue
		}
		spec := scaleSpec(st.app)
		for _, t := range st.targets {
			if t.Percent == 0 && t.Tag == "" {
				continue
			}
			sc := st.scalers[t.Revision]
			ready := c.readyReplicasLocked(st, t.Revision)
			if sc == nil {
				start := max(ready, spec.Min)
				if w, ok := st.want[t.Revision]; ok {
					start = w
				}
				sc = &scaler{dec: autoscale.NewDecider(spec, start, now), lastStats: map[string]api.ContainerStats{}}
				st.scalers[t.Revision] = sc
			} else if sc.dec.Spec() != withDefaultsOf(spec) {
				sc.dec.SetSpec(spec)
			}
			rs := c.cfg.Router.RevisionStats(t.Revision)
			// Requests held by the activator wait for the cold start,
			// not for more replicas: counting them would turn every
			// burst at zero into a panic scale-out. Load that is real
			// is still in flight once they are released.
			load := float64(rs.InFlight - rs.Queued)
			if spec.Metric == autoscale.CPU || spec.Metric == autoscale.Memory {
				load = sc.util
				if sampleStats {
					var ids []string
					for _, r := range st.replicas {
						if r.rev == t.Revision && r.view().ready {
							ids = append(ids, r.id)
						}
					}
					lim := api.Resources{}
					if rev := revisionNamed(st.revs, t.Revision); rev != nil {
						lim, _ = containerResources(rev.Spec.Resources)
					}
					statReqs = append(statReqs, statReq{sc, ids, lim, spec.Metric})
				}
			}
			sc.dec.Record(autoscale.Sample{Time: now, Load: load, Requests: rs.Requests, InFlight: int(rs.InFlight)})
			if !decide {
				continue
			}
			dec := sc.dec.Decide(now, ready)
			old, had := st.want[t.Revision]
			if !had {
				old = max(ready, spec.Min)
			}
			if had && dec.Desired != old {
				st.want[t.Revision] = dec.Desired
				verb := "ScaledUp"
				if dec.Desired < old {
					verb = "ScaledDown"
				}
				if dec.Desired == 0 {
					verb = "ScaledToZero"
				}
				c.event(st, api.EventNormal, verb, "revision %s: %d → %d replicas: %s", t.Revision, old, dec.Desired, dec.Reason)
				changed = append(changed, name)
			} else if !had {
				st.want[t.Revision] = dec.Desired
			}
			sc.lastDec = dec
		}
	}
	c.mu.Unlock()
	for _, n := range changed {
		c.enqueue(n)
	}
	// CPU and memory use come from the replicas' cgroups, outside the lock.
	for _, sr := range statReqs {
		sum := 0.0
		for _, id := range sr.ids {
			s, err := c.cfg.Containers.Stats(context.WithoutCancel(c.bg), id)
			if err != nil {
				continue
			}
			switch sr.kind {
			case autoscale.Memory:
				limit := float64(s.MemoryLimitBytes)
				if limit <= 0 || limit > 1<<50 {
					limit = float64(sr.lim.MemoryBytes)
				}
				if limit > 0 {
					sum += float64(s.MemoryUsageBytes) / limit * 100
				}
			case autoscale.CPU:
				prev, ok := sr.sc.lastStats[id]
				sr.sc.lastStats[id] = s
				if ok && s.Time.After(prev.Time) && s.CPUUsageNanos >= prev.CPUUsageNanos {
					cpus := float64(sr.lim.NanoCPUs) / 1e9
					if cpus <= 0 {
						cpus = 1
					}
					sum += float64(s.CPUUsageNanos-prev.CPUUsageNanos) / float64(s.Time.Sub(prev.Time).Nanoseconds()) / cpus * 100
				}
			}
		}
		c.mu.Lock()
		sr.sc.util = math.Round(sum*10) / 10
		c.mu.Unlock()
	}
}

func withDefaultsOf(s autoscale.Spec) autoscale.Spec {
	return autoscale.NewDecider(s, 0, time.Time{}).Spec()
}

// scalingText describes the autoscaler's view of an App, for status.
func (c *Controller) scalingTextLocked(st *appState) string {
	var parts []string
	for rev, sc := range st.scalers {
		if sc.lastDec.Reason != "" {
			parts = append(parts, fmt.Sprintf("%s: %s", rev, sc.lastDec.Reason))
		}
	}
	return strings.Join(parts, "; ")
}
