package controller

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/internal/probe"
)

// observed is what a reconcile saw of one App: the input of decide. It
// is a copy; decide changes none of it.
type observed struct {
	App api.App
	// Revs are the App's revisions, oldest first; there is at least one.
	Revs     []api.Revision
	Replicas []replicaState
	// ImageIDs holds the image each revision resolved to; RevErrs why a
	// revision cannot run.
	ImageIDs map[string]string
	RevErrs  map[string]revError
	// Creating and Preparing count, per revision, the replicas and the
	// prewarmed replicas being created in the background.
	Creating, Preparing map[string]int
	// Want is the replica count the autoscaler or the activator asks of
	// each revision; a revision missing from it gets the App's min.
	Want map[string]int
	// Domain and URLPort make status URLs.
	Domain  string
	URLPort int
}

// replicaState is one replica as observed: the container and what its
// prober last saw.
type replicaState struct {
	ID, Name, Revision string
	Created            time.Time
	// Prewarm marks a container of the prewarm pool; Starting one whose
	// start is under way.
	Prewarm, Starting bool
	// NeverStarted marks a replica (not prewarmed) whose container is
	// still created with nothing starting it: the daemon stopped between
	// its create and its start.
	NeverStarted bool
	replicaView
}

// decision is what decide asks for one App.
type decision struct {
	// Revs are the App's revisions with the decision applied (newly
	// ready ones marked, pruned ones gone).
	Revs []api.Revision
	// ReadyRevisions were ready for the first time: store them so.
	ReadyRevisions []string
	Targets        []target
	// Start lists prewarmed replicas (IDs) to start.
	Start     []string
	Create    []createAction
	Terminate []terminateAction
	// Prune lists revisions to delete.
	Prune []string
	// RevErrs are new reasons why revisions cannot run.
	RevErrs       map[string]revError
	Status        api.AppStatus
	StatusChanged bool
	Events        []event
}

type createAction struct {
	Revision string
	Prewarm  bool
}

type terminateAction struct{ ID, Why string }

// event is an event for the App being reconciled.
type event struct{ Type, Reason, Message string }

// plan is decide's working state: what is observed and what is decided
// so far (a replica decided terminated no longer counts as ready).
type plan struct {
	o          observed
	d          decision
	terminated map[string]bool
	now        time.Time
}

func newPlan(o observed, now time.Time) *plan {
	p := &plan{o: o, terminated: map[string]bool{}, now: now}
	p.d.Revs = append([]api.Revision(nil), o.Revs...)
	p.d.RevErrs = map[string]revError{}
	return p
}

// decide is the pure part of reconcile: from what was observed of one
// App and the time, the actions that converge it and its new status.
func decide(o observed, now time.Time) (decision, error) {
	p := newPlan(o, now)
	p.markReady()
	latestCreated := p.latestCreated()
	latestReady := p.latestReady()
	targets, err := app.ResolveTraffic(o.App.Spec.Traffic, latestReady, latestCreated)
	if err != nil {
		return decision{}, err
	}
	p.d.Targets = targets
	desired := desiredReplicas(o.App, targets, latestCreated, latestReady == latestCreated, o.Want)
	for _, rev := range p.d.Revs {
		p.scaleRevision(rev, desired[rev.Name])
	}
	for _, r := range o.Replicas {
		if revisionNamed(p.d.Revs, r.Revision) == nil && !p.isTerminating(r) {
			p.terminate(r, "its revision was deleted")
		}
	}
	p.prune()
	p.d.Status = p.status()
	p.d.StatusChanged = !reflect.DeepEqual(p.d.Status, o.App.Status)
	return p.d, nil
}

func (p *plan) event(typ, reason, format string, args ...any) {
	p.d.Events = append(p.d.Events, event{typ, reason, fmt.Sprintf(format, args...)})
}

func (p *plan) isTerminating(r replicaState) bool { return r.terminating || p.terminated[r.ID] }

func (p *plan) terminate(r replicaState, why string) {
	p.terminated[r.ID] = true
	p.d.Terminate = append(p.d.Terminate, terminateAction{r.ID, why})
}

func (p *plan) revErr(rev string) (revError, bool) {
	if e, ok := p.d.RevErrs[rev]; ok {
		return e, true
	}
	e, ok := p.o.RevErrs[rev]
	return e, ok
}

// markReady marks the revisions that are ready for the first time
// (before any scaling takes their replicas away).
func (p *plan) markReady() {
	for i, rev := range p.d.Revs {
		if !rev.Status.Ready && p.readyReplicas(rev.Name) > 0 {
			p.d.Revs[i].Status.Ready = true
			p.d.ReadyRevisions = append(p.d.ReadyRevisions, rev.Name)
			p.event(api.EventNormal, "RevisionReady", "revision %s is ready", rev.Name)
		}
	}
}

func (p *plan) latestCreated() string { return p.d.Revs[len(p.d.Revs)-1].Name }

// latestReady is the newest revision that has been ready.
func (p *plan) latestReady() string {
	for i := len(p.d.Revs) - 1; i >= 0; i-- {
		r := p.d.Revs[i]
		if r.Status.Ready || p.readyReplicas(r.Name) > 0 {
			return r.Name
		}
	}
	return ""
}

// readyReplicas counts the ready replicas of rev that stay.
func (p *plan) readyReplicas(rev string) int {
	n := 0
	for _, r := range p.o.Replicas {
		if r.Revision == rev && r.ready && !p.isTerminating(r) {
			n++
		}
	}
	return n
}

// scaleRevision starts or drains replicas of rev to reach want, starting
// prewarmed containers first, and keeps the revision's pool of prewarmed
// containers full.
func (p *plan) scaleRevision(rev api.Revision, want int) {
	var live, warm []replicaState
	for _, r := range p.o.Replicas {
		if r.Revision != rev.Name || p.isTerminating(r) {
			continue
		}
		if r.NeverStarted {
			// Nothing will start it (a restart undoes such a start).
			p.event(api.EventWarning, "ReplicaFailed", "replica %s was never started (the daemon stopped while starting it); replacing it", r.Name)
			p.terminate(r, "it was never started")
			continue
		}
		if r.Prewarm && r.status == api.StatusCreated && !r.Starting {
			warm = append(warm, r)
		} else {
			live = append(live, r)
		}
	}
	if e, bad := p.revErr(rev.Name); bad && (e.reason == api.ReasonImageNotFound || e.reason == api.ReasonNetworkNotFound) {
		return
	}
	creating := p.o.Creating[rev.Name]
	have := len(live) + creating
	for have < want && len(warm) > 0 {
		p.d.Start = append(p.d.Start, warm[0].ID)
		warm = warm[1:]
		have++
	}
	for ; have < want && p.canCreate(rev); have++ {
		p.d.Create = append(p.d.Create, createAction{Revision: rev.Name})
	}
	if len(live) > want && creating == 0 {
		// Remove the least useful first: not ready, then the newest.
		sort.Slice(live, func(i, j int) bool {
			if live[i].ready != live[j].ready {
				return !live[i].ready
			}
			return live[i].Created.After(live[j].Created)
		})
		for _, r := range live[:len(live)-want] {
			p.terminate(r, fmt.Sprintf("revision %s wants %d replicas", rev.Name, want))
		}
	}
	p.keepPrewarmPool(rev, warm)
}

// canCreate reports whether replicas of rev can be made, and records why
// not when its container request cannot be built.
func (p *plan) canCreate(rev api.Revision) bool {
	if _, err := containerRequest(p.o.App, rev, p.o.ImageIDs[rev.Name], rev.Name); err != nil {
		p.d.RevErrs[rev.Name] = revError{api.ReasonSecretNotFound, err.Error()}
		return false
	}
	return true
}

// keepPrewarmPool fills or trims rev's pool of prewarmed containers
// (warm, those not being started): only a revision that takes traffic
// has one.
func (p *plan) keepPrewarmPool(rev api.Revision, warm []replicaState) {
	pool := 0
	if p.o.App.Spec.Scale.Prewarm > 0 {
		for _, t := range p.d.Targets {
			if t.Revision == rev.Name && t.Percent > 0 {
				pool = p.o.App.Spec.Scale.Prewarm
			}
		}
	}
	for n := len(warm) + p.o.Preparing[rev.Name]; n < pool && p.canCreate(rev); n++ {
		p.d.Create = append(p.d.Create, createAction{Revision: rev.Name, Prewarm: true})
	}
	for len(warm) > pool {
		p.terminate(warm[len(warm)-1], "the prewarm pool is full")
		warm = warm[:len(warm)-1]
	}
}

// prune deletes the oldest revisions beyond the history limit that
// receive no traffic and have no replicas.
func (p *plan) prune() {
	limit := 10
	if l := p.o.App.Spec.RevisionHistoryLimit; l != nil {
		limit = *l
	}
	routed := map[string]bool{}
	for _, t := range p.d.Targets {
		routed[t.Revision] = true
	}
	for _, t := range p.o.App.Spec.Traffic {
		routed[t.Revision] = true
	}
	busy := map[string]bool{}
	for _, r := range p.o.Replicas {
		busy[r.Revision] = true
	}
	latest := p.latestCreated()
	var idle []string
	for _, r := range p.d.Revs {
		if !routed[r.Name] && r.Name != latest {
			idle = append(idle, r.Name)
		}
	}
	for ; len(idle) > limit; idle = idle[1:] {
		if !busy[idle[0]] {
			p.d.Prune = append(p.d.Prune, idle[0])
		}
	}
	for _, name := range p.d.Prune {
		for i, r := range p.d.Revs {
			if r.Name == name {
				p.d.Revs = append(p.d.Revs[:i:i], p.d.Revs[i+1:]...)
				break
			}
		}
	}
}

// problem says what keeps rev from serving, if anything.
func (p *plan) problem(rev string) (reason, msg string) {
	if e, bad := p.revErr(rev); bad {
		return e.reason, e.message
	}
	if p.readyReplicas(rev) > 0 {
		return "", ""
	}
	r := revisionNamed(p.o.Revs, rev)
	for _, rp := range p.o.Replicas {
		if rp.Revision != rev || p.isTerminating(rp) || rp.Prewarm && rp.status == api.StatusCreated {
			continue
		}
		switch {
		case rp.oomKilled && rp.restarts > 0:
			return api.ReasonOOMKilled, fmt.Sprintf("replica %s of %s was killed for using more than its memory limit (restarted %d times)", rp.Name, rev, rp.restarts)
		case rp.restarts >= 2 || rp.status == api.StatusRestarting && rp.restarts >= 1:
			return api.ReasonCrashLoopBackOff, fmt.Sprintf("replica %s of %s keeps exiting (restarted %d times): see skiff logs %s", rp.Name, rev, rp.restarts, rp.Name)
		case !rp.failingFor.IsZero() && r != nil && p.now.Sub(rp.failingFor) > probeDeadline(r.Spec):
			return api.ReasonProbeFailed, fmt.Sprintf("replica %s of %s did not become ready within %s: %s", rp.Name, rev, probeDeadline(r.Spec), rp.lastErr)
		}
	}
	return "", ""
}

// degradation is the first problem found, latest revision first.
func (p *plan) degradation(latestCreated, latestReady string) (reason, msg string) {
	reason, msg = p.problem(latestCreated)
	if reason == "" && latestReady != "" {
		for _, t := range p.d.Targets {
			if r, m := p.problem(t.Revision); r != "" {
				return r, m
			}
		}
	}
	return reason, msg
}

// revisionNamed finds a revision by name (nil if there is none).
func revisionNamed(revs []api.Revision, name string) *api.Revision {
	for i := range revs {
		if revs[i].Name == name {
			return &revs[i]
		}
	}
	return nil
}

func trafficText(ts []target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%d%% %s", t.Percent, t.Revision))
	}
	return strings.Join(parts, ", ")
}

// probeDeadline is how long a replica may stay unready before its
// revision counts as failing its probes.
func probeDeadline(rs api.RevisionSpec) time.Duration {
	startup, readiness, _ := probe.Config(rs.Probes, rs.Port)
	d := 5*time.Second + readiness.InitialDelay.Duration + readiness.Period.Duration*time.Duration(readiness.FailureThreshold)
	if startup != nil {
		d += startup.InitialDelay.Duration + startup.Period.Duration*time.Duration(startup.FailureThreshold)
	}
	return d
}

// nextRevision is the revision to create for a, whose revisions are
// revs (oldest first): revision N+1 when the spec's runnable part or the
// versions of the secrets it uses (secretVersions, nil for none) differ
// from the latest revision's, else nil.
func nextRevision(a api.App, revs []api.Revision, secretVersions map[string]int64, now time.Time) (*api.Revision, error) {
	rs := app.RevisionSpecOf(a.Spec)
	rs.SecretVersions = secretVersions
	if n := len(revs); n > 0 && app.Hash(rs) == revs[n-1].Hash {
		return nil, nil
	}
	num := 1
	if n := len(revs); n > 0 {
		_, last, err := app.ParseRevisionName(revs[n-1].Name)
		if err != nil {
			return nil, err
		}
		num = last + 1
	}
	rev, err := app.NewRevision(a, num, now)
	if err != nil {
		return nil, err
	}
	rev.Spec.SecretVersions = secretVersions
	rev.Hash = app.Hash(rev.Spec)
	return &rev, nil
}
