package controller

import (
	"fmt"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
)

// status builds the App's status from the plan (pure): revisions,
// traffic, replica counts and the Ready, Degraded and RolloutInProgress
// conditions. It adds the events that go with it: the problem that
// degrades the App, and the end of a rollout.
func (p *plan) status() api.AppStatus {
	now := p.now
	a := app.Clone(p.o.App)
	s := &a.Status
	app.InitializeConditions(s, now)
	latestCreated, latestReady := p.latestCreated(), p.latestReady()
	s.ObservedGeneration = a.Metadata.Generation
	s.LatestCreatedRevision = latestCreated
	s.LatestReadyRevision = latestReady
	s.URL = "http://" + app.Host(a, p.o.Domain) + portSuffix(p.o.URLPort)
	s.Traffic = nil
	for _, t := range p.d.Targets {
		tt := api.TrafficTarget{Revision: t.Revision, Percent: t.Percent, Tag: t.Tag}
		if t.Tag != "" {
			tt.URL = "http://" + app.TagHost(a, t.Tag, p.o.Domain) + portSuffix(p.o.URLPort)
		}
		s.Traffic = append(s.Traffic, tt)
	}
	desired := desiredReplicas(p.o.App, p.d.Targets, latestCreated, latestReady == latestCreated, p.o.Want)
	s.Replicas = api.ReplicaCounts{}
	for _, n := range desired {
		s.Replicas.Desired += n
	}
	for _, r := range p.o.Replicas {
		if r.ready && !p.isTerminating(r) {
			s.Replicas.Ready++
		}
	}

	reason, msg := p.degradation(latestCreated, latestReady)
	if reason != "" {
		app.MarkDegraded(s, reason, msg, now)
		p.event(api.EventWarning, reason, "%s", msg)
	} else {
		app.MarkNotDegraded(s, now)
	}
	switch {
	case p.allReady(desired):
		app.MarkReady(s, now)
	case reason != "":
		app.MarkNotReady(s, reason, msg, now)
	default:
		app.MarkReadyUnknown(s, api.ReasonDeploying, "waiting for a ready replica", now)
	}
	p.rollout(s, latestCreated, latestReady, reason, msg)
	return a.Status
}

// allReady reports whether every routed revision has a ready replica (or
// is at zero replicas by choice after having been ready).
func (p *plan) allReady(desired map[string]int) bool {
	all := len(p.d.Targets) > 0
	for _, t := range p.d.Targets {
		if t.Percent == 0 && t.Tag == "" {
			continue
		}
		rev := revisionNamed(p.d.Revs, t.Revision)
		if p.readyReplicas(t.Revision) == 0 && !(desired[t.Revision] == 0 && rev != nil && rev.Status.Ready) {
			all = false
		}
	}
	return all
}

// rollout sets RolloutInProgress: true while the latest revision is not
// ready, with the reason it is not.
func (p *plan) rollout(s *api.AppStatus, latestCreated, latestReady, reason, msg string) {
	switch {
	case latestCreated != latestReady && reason == "":
		app.MarkRolloutInProgress(s, api.ReasonDeploying, fmt.Sprintf("revision %s is starting", latestCreated), p.now)
	case latestCreated != latestReady:
		app.MarkRolloutInProgress(s, reason, fmt.Sprintf("revision %s is not ready: %s", latestCreated, msg), p.now)
	default:
		wasRolling := false
		if cond, ok := app.GetCondition(p.o.App.Status, api.ConditionRolloutInProgress); ok && cond.Status == api.ConditionTrue {
			wasRolling = true
		}
		app.MarkRolloutComplete(s, p.now)
		if wasRolling {
			p.event(api.EventNormal, "RolloutComplete", "revision %s serves %s", latestCreated, trafficText(p.d.Targets))
		}
	}
}

// portSuffix is ":PORT" for a URL of the ingress at port, "" for 80.
func portSuffix(port int) string {
	if port == 0 || port == 80 {
		return ""
	}
	return fmt.Sprintf(":%d", port)
}
