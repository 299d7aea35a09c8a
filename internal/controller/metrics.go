package controller

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the Apps, read from the controller and the ingress when
// scraped (nothing is counted twice on the request path).
var (
	descInFlight = prometheus.NewDesc("skiff_revision_requests_in_flight",
		"Requests being proxied to, or held for, a revision, as the ingress counts them.", []string{"app", "revision"}, nil)
	descRequests = prometheus.NewDesc("skiff_revision_requests_total",
		"Requests routed to a revision by the ingress.", []string{"app", "revision"}, nil)
	descDesired = prometheus.NewDesc("skiff_revision_desired_replicas",
		"Replicas the autoscaler wants for a revision.", []string{"app", "revision"}, nil)
	descReady = prometheus.NewDesc("skiff_revision_ready_replicas",
		"Replicas of a revision that pass their readiness probe.", []string{"app", "revision"}, nil)
	descPanic = prometheus.NewDesc("skiff_revision_autoscaler_panic",
		"1 while the autoscaler is meeting a burst for a revision (panic mode).", []string{"app", "revision"}, nil)
	descTraffic = prometheus.NewDesc("skiff_revision_traffic_percent",
		"The share of an App's traffic routed to a revision.", []string{"app", "revision"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Controller) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInFlight, descRequests, descDesired, descReady, descPanic, descTraffic} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Controller) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := c.apps[n]
		if !st.exists || len(st.revs) == 0 {
			continue
		}
		latestCreated := st.revs[len(st.revs)-1].Name
		desired := desiredReplicas(st.app, st.targets, latestCreated, c.latestReadyLocked(st) == latestCreated, st.want)
		percent := map[string]int{}
		for _, t := range st.targets {
			percent[t.Revision] += t.Percent
		}
		for _, rev := range st.revs {
			r := rev.Name
			stats := c.cfg.Router.RevisionStats(r)
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(stats.InFlight), n, r)
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(stats.Requests), n, r)
			ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(desired[r]), n, r)
			ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(c.readyReplicasLocked(st, r)), n, r)
			ch <- prometheus.MustNewConstMetric(descTraffic, prometheus.GaugeValue, float64(percent[r]), n, r)
			p := 0.0
			if sc := st.scalers[r]; sc != nil && sc.lastDec.Panic {
				p = 1
			}
			ch <- prometheus.MustNewConstMetric(descPanic, prometheus.GaugeValue, p, n, r)
		}
	}
}

var _ prometheus.Collector = (*Controller)(nil)
