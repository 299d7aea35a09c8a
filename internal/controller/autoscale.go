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

// statReq asks for the CPU or memory use of a revision's ready replicas,
// read outside the lock.
type statReq struct {
	sc   *scaler
	ids  []string
	lim  api.Resources
	kind autoscale.Metric
}

// autoscaleTick records a load sample of every routed revision and, when
// decide is set, re-decides its replica count; sampleStats reads the
// replicas' CPU and memory use too.
func (c *Controller) autoscaleTick(now time.Time, decide, sampleStats bool) {
	var statReqs []statReq
	var changed []string
	c.mu.Lock()
	for name, st := range c.apps {
		if !st.exists {
			continue
		}
		spec := scaleSpec(st.app)
		for _, t := range st.targets {
			if t.Percent == 0 && t.Tag == "" {
				continue
			}
			sr, scaled := c.autoscaleRevisionLocked(st, t.Revision, spec, now, decide, sampleStats)
			if sr != nil {
				statReqs = append(statReqs, *sr)
			}
			if scaled {
				changed = append(changed, name)
			}
		}
	}
	c.mu.Unlock()
	for _, n := range changed {
		c.enqueue(n)
	}
	// CPU and memory use come from the replicas' cgroups, outside the lock.
	for _, sr := range statReqs {
		util := c.utilization(sr)
		c.mu.Lock()
		sr.sc.util = util
		c.mu.Unlock()
	}
}

// autoscaleRevisionLocked samples one routed revision and, when decide is
// set, applies the decider's count (scaled: it changed). It returns a
// request for the replicas' use when the metric needs one. The caller
// holds c.mu.
func (c *Controller) autoscaleRevisionLocked(st *appState, rev string, spec autoscale.Spec, now time.Time, decide, sampleStats bool) (sr *statReq, scaled bool) {
	sc := st.scalers[rev]
	ready := c.readyReplicasLocked(st, rev)
	if sc == nil {
		start := max(ready, spec.Min)
		if w, ok := st.want[rev]; ok {
			start = w
		}
		sc = &scaler{dec: autoscale.NewDecider(spec, start, now), lastStats: map[string]api.ContainerStats{}}
		st.scalers[rev] = sc
	} else if sc.dec.Spec() != withDefaultsOf(spec) {
		sc.dec.SetSpec(spec)
	}
	rs := c.cfg.Router.RevisionStats(rev)
	// Requests held by the activator wait for the cold start, not for
	// more replicas: counting them would turn every burst at zero into a
	// panic scale-out. Load that is real is still in flight once they are
	// released.
	load := float64(rs.InFlight - rs.Queued)
	if spec.Metric == autoscale.CPU || spec.Metric == autoscale.Memory {
		load = sc.util
		if sampleStats {
			sr = &statReq{sc: sc, kind: spec.Metric}
			for _, r := range st.replicas {
				if r.rev == rev && r.view().ready {
					sr.ids = append(sr.ids, r.id)
				}
			}
			if r := revisionNamed(st.revs, rev); r != nil {
				sr.lim, _ = containerResources(r.Spec.Resources)
			}
		}
	}
	sc.dec.Record(autoscale.Sample{Time: now, Load: load, Requests: rs.Requests, InFlight: int(rs.InFlight)})
	if !decide {
		return sr, false
	}
	dec := sc.dec.Decide(now, ready)
	sc.lastDec = dec
	old, had := st.want[rev]
	st.want[rev] = dec.Desired
	if !had || dec.Desired == old {
		return sr, false
	}
	verb := "ScaledUp"
	if dec.Desired < old {
		verb = "ScaledDown"
	}
	if dec.Desired == 0 {
		verb = "ScaledToZero"
	}
	c.event(st, api.EventNormal, verb, "revision %s: %d → %d replicas: %s", rev, old, dec.Desired, dec.Reason)
	return sr, true
}

// utilization sums the CPU or memory use of sr's replicas, in percent of
// their limits.
func (c *Controller) utilization(sr statReq) float64 {
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
	return math.Round(sum*10) / 10
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
