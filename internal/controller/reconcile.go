package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/app"
	"skiff.dev/skiff/internal/store"
)

// reconcile converges one App. It never blocks on containers starting or
// draining: those run in the background and enqueue the App again.
func (c *Controller) reconcile(ctx context.Context, name string) error {
	a, err := c.cfg.Store.GetApp(ctx, name)
	exists := err == nil
	if err != nil && !isNotFound(err) {
		return err
	}
	var revs []api.Revision
	if exists {
		if revs, err = c.cfg.Store.ListRevisions(ctx, name); err != nil {
			return err
		}
		sort.Slice(revs, func(i, j int) bool { return revs[i].Name < revs[j].Name })
	}

	c.mu.Lock()
	st := c.stateLocked(name)
	st.app, st.exists, st.revs = a, exists, revs
	c.syncReplicasLocked(st)
	c.mu.Unlock()

	if !exists {
		return c.reconcileGone(ctx, st)
	}

	// 1. A new revision when the runnable part of the spec changed.
	if err := c.ensureRevision(ctx, st); err != nil {
		return err
	}
	// 2. Each revision's image, pinned once.
	for _, r := range st.revs {
		c.resolveImage(ctx, st, r)
	}

	c.mu.Lock()
	status, changed, err := c.convergeLocked(ctx, st)
	read := st.app.Metadata.ResourceVersion
	c.mu.Unlock()
	if err != nil || !changed {
		return err
	}
	return c.writeStatus(ctx, st, read, status)
}

// writeStatus stores status as the status of the App read at version
// read. Only the status is written, and only if the App is still at that
// version: a status computed from an older spec never replaces a newer
// one, nor puts the older spec back. A newer App is reconciled again.
func (c *Controller) writeStatus(ctx context.Context, st *appState, read string, status api.AppStatus) error {
	stored, err := c.cfg.Store.UpdateAppStatus(ctx, st.name, read, status)
	var stale *store.StaleError
	if errors.As(err, &stale) {
		c.enqueue(st.name)
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	if st.app.Metadata.ResourceVersion == read {
		st.app = stored
	}
	c.mu.Unlock()
	return nil
}

// convergeLocked acts on the revisions and replicas of an App whose spec
// and revisions st holds, and returns the App's new status and whether it
// differs from the stored one. The caller holds c.mu.
func (c *Controller) convergeLocked(ctx context.Context, st *appState) (api.AppStatus, bool, error) {
	// Revisions that are ready for the first time (before any scaling
	// takes their replicas away).
	for i, rev := range st.revs {
		if !rev.Status.Ready && c.readyReplicasLocked(st, rev.Name) > 0 {
			st.revs[i].Status.Ready = true
			if err := c.cfg.Store.PutRevision(ctx, st.revs[i]); err != nil {
				return api.AppStatus{}, false, err
			}
			c.event(st, api.EventNormal, "RevisionReady", "revision %s is ready", rev.Name)
		}
	}
	latestCreated := st.revs[len(st.revs)-1].Name
	latestReady := c.latestReadyLocked(st)
	targets, err := resolveTraffic(st.app.Spec.Traffic, latestReady, latestCreated)
	if err != nil {
		return api.AppStatus{}, false, err
	}
	st.targets = targets
	// 3. Replicas per revision.
	desired := desiredReplicas(st.app, targets, latestCreated, latestReady == latestCreated, st.want)
	for _, rev := range st.revs {
		c.scaleRevisionLocked(ctx, st, rev, desired[rev.Name])
	}
	// Replicas of revisions that no longer exist.
	for _, r := range st.replicas {
		if !hasRevision(st.revs, r.rev) && !r.view().terminating {
			c.terminateLocked(st, r, "its revision was deleted")
		}
	}
	c.pruneRevisionsLocked(ctx, st)
	c.updateRoutesLocked()
	status := c.statusLocked(st)
	return status, !reflect.DeepEqual(status, st.app.Status), nil
}

func hasRevision(revs []api.Revision, name string) bool {
	for _, r := range revs {
		if r.Name == name {
			return true
		}
	}
	return false
}

// ensureRevision creates revision N+1 when the spec's runnable part
// differs from the latest revision's.
func (c *Controller) ensureRevision(ctx context.Context, st *appState) error {
	rs := app.RevisionSpecOf(st.app.Spec)
	if n := len(st.revs); n > 0 && app.Hash(rs) == st.revs[n-1].Hash {
		return nil
	}
	num := 1
	if n := len(st.revs); n > 0 {
		_, last, err := app.ParseRevisionName(st.revs[n-1].Name)
		if err != nil {
			return err
		}
		num = last + 1
	}
	rev, err := app.NewRevision(st.app, num, time.Now())
	if err != nil {
		return err
	}
	if err := c.cfg.Store.PutRevision(ctx, rev); err != nil {
		return err
	}
	c.mu.Lock()
	st.revs = append(st.revs, rev)
	c.event(st, api.EventNormal, "RevisionCreated", "created revision %s (image %s)", rev.Name, rev.Spec.Image)
	c.mu.Unlock()
	return nil
}

// resolveImage pins rev's image to an ID (once) or records why it can't.
func (c *Controller) resolveImage(ctx context.Context, st *appState, rev api.Revision) {
	c.mu.Lock()
	_, done := st.imageIDs[rev.Name]
	c.mu.Unlock()
	if done {
		return
	}
	ref := rev.Spec.Image
	if rev.Status.ImageDigest != "" && strings.HasPrefix(rev.Status.ImageDigest, "sha256:") {
		// Once pinned, always the same image.
		ref = rev.Status.ImageDigest
	}
	id, digest, err := c.cfg.Images.ResolveID(ctx, ref)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		st.revErrs[rev.Name] = revError{api.ReasonImageNotFound, fmt.Sprintf("revision %s: %v", rev.Name, err)}
		return
	}
	delete(st.revErrs, rev.Name)
	st.imageIDs[rev.Name] = id
	if rev.Status.ImageDigest == "" {
		rev.Status.ImageDigest = id
		_ = digest
		for i := range st.revs {
			if st.revs[i].Name == rev.Name {
				st.revs[i].Status.ImageDigest = id
				c.cfg.Store.PutRevision(ctx, st.revs[i])
			}
		}
	}
}

// latestReadyLocked is the newest revision that has been ready.
func (c *Controller) latestReadyLocked(st *appState) string {
	for i := len(st.revs) - 1; i >= 0; i-- {
		r := st.revs[i]
		if r.Status.Ready || c.readyReplicasLocked(st, r.Name) > 0 {
			return r.Name
		}
	}
	return ""
}

func (c *Controller) readyReplicasLocked(st *appState, rev string) int {
	n := 0
	for _, r := range st.replicas {
		if r.rev == rev {
			if v := r.view(); v.ready && !v.terminating {
				n++
			}
		}
	}
	return n
}

// syncReplicasLocked brings st.replicas in line with the containers that
// carry the App's label: new ones get a prober, vanished ones are dropped.
func (c *Controller) syncReplicasLocked(st *appState) {
	seen := map[string]bool{}
	for _, ctr := range c.cfg.Containers.List(c.bg, true) {
		if ctr.Config.Labels[LabelApp] != st.name {
			continue
		}
		seen[ctr.ID] = true
		if _, ok := st.replicas[ctr.ID]; ok {
			continue
		}
		c.trackLocked(st, ctr)
	}
	for id, r := range st.replicas {
		if !seen[id] {
			r.stopProber()
			delete(st.replicas, id)
			c.bcMu.Lock()
			delete(c.byContainer, id)
			c.bcMu.Unlock()
		}
	}
}

// trackLocked starts tracking a replica container.
func (c *Controller) trackLocked(st *appState, ctr api.Container) *replica {
	revName := ctr.Config.Labels[LabelRevision]
	r := &replica{id: ctr.ID, name: ctr.Name, app: st.name, rev: revName, created: ctr.Created, wakeCh: make(chan struct{}, 1), port: 8080,
		status: ctr.State.Status, restarts: ctr.State.RestartCount, prewarm: ctr.Config.Labels[LabelPrewarm] == "true"}
	for _, rev := range st.revs {
		if rev.Name == revName {
			if rev.Spec.Port != 0 {
				r.port = rev.Spec.Port
			}
			r.probes = rev.Spec.Probes
		}
	}
	st.replicas[ctr.ID] = r
	c.bcMu.Lock()
	c.byContainer[ctr.ID] = r
	c.bcMu.Unlock()
	ctx, cancel := context.WithCancel(c.bg)
	r.cancel = cancel
	c.wg.Add(1)
	go c.runProber(ctx, r)
	return r
}

// scaleRevisionLocked starts or drains replicas of rev to reach want,
// starting prewarmed containers first, and keeps the revision's pool of
// prewarmed containers full.
func (c *Controller) scaleRevisionLocked(ctx context.Context, st *appState, rev api.Revision, want int) {
	var live, warm []*replica
	for _, r := range st.replicas {
		if r.rev != rev.Name {
			continue
		}
		v := r.view()
		if v.terminating {
			continue
		}
		if !r.prewarm && v.status == api.StatusCreated && !r.isStarting() && !st.launching[r.name] && c.neverStarted(r) {
			// Nothing will start it: the daemon stopped between its create
			// and its start (a restart undoes such a start).
			c.event(st, api.EventWarning, "ReplicaFailed", "replica %s was never started (the daemon stopped while starting it); replacing it", r.name)
			c.terminateLocked(st, r, "it was never started")
			continue
		}
		if r.prewarm && v.status == api.StatusCreated && !r.isStarting() {
			warm = append(warm, r)
		} else {
			live = append(live, r)
		}
	}
	if e, bad := st.revErrs[rev.Name]; bad && e.reason == api.ReasonImageNotFound {
		return
	}
	imageID := st.imageIDs[rev.Name]
	have := len(live) + st.creating[rev.Name]
	for have < want && len(warm) > 0 {
		c.startPrewarmedLocked(st, warm[0])
		warm = warm[1:]
		have++
	}
	for ; have < want; have++ {
		c.createReplicaLocked(st, rev, imageID, false)
	}
	if len(live) > want && st.creating[rev.Name] == 0 {
		// Remove the least useful first: not ready, then the newest.
		sort.Slice(live, func(i, j int) bool {
			vi, vj := live[i].view(), live[j].view()
			if vi.ready != vj.ready {
				return !vi.ready
			}
			return live[i].created.After(live[j].created)
		})
		for _, r := range live[:len(live)-want] {
			c.terminateLocked(st, r, fmt.Sprintf("revision %s wants %d replicas", rev.Name, want))
		}
	}
	// The prewarm pool: only for a revision that takes traffic.
	pool := 0
	if st.app.Spec.Scale.Prewarm > 0 {
		for _, t := range st.targets {
			if t.Revision == rev.Name && t.Percent > 0 {
				pool = st.app.Spec.Scale.Prewarm
			}
		}
	}
	for n := len(warm) + st.preparing[rev.Name]; n < pool; n++ {
		c.createReplicaLocked(st, rev, imageID, true)
	}
	for len(warm) > pool {
		c.terminateLocked(st, warm[len(warm)-1], "the prewarm pool is full")
		warm = warm[:len(warm)-1]
	}
}

// neverStarted reports whether r's container is still created. (The
// prober's view of the status can be a moment behind a start.)
func (c *Controller) neverStarted(r *replica) bool {
	ctr, err := c.cfg.Containers.Get(c.bg, r.id)
	return err == nil && ctr.State.Status == api.StatusCreated
}

// startPrewarmedLocked starts a prewarmed replica in the background.
func (c *Controller) startPrewarmedLocked(st *appState, r *replica) {
	r.mu.Lock()
	r.starting = true
	r.mu.Unlock()
	c.log.Info("starting prewarmed replica", "app", st.name, "replica", r.name)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.cfg.Containers.Start(c.bg, r.id); err != nil {
			c.mu.Lock()
			c.event(st, api.EventWarning, "ReplicaFailed", "prewarmed replica %s failed to start: %v", r.name, err)
			c.replaceFailedLocked(st, r)
			c.mu.Unlock()
		}
		r.poke()
		c.enqueue(st.name)
	}()
}

// createReplicaLocked creates one replica in the background: started, or
// prewarmed (created and prepared, not started).
func (c *Controller) createReplicaLocked(st *appState, rev api.Revision, imageID string, prewarm bool) {
	name := replicaName(rev.Name, randomSuffix())
	req, err := containerRequest(st.app, rev, imageID, name)
	if err != nil {
		st.revErrs[rev.Name] = revError{api.ReasonSecretNotFound, err.Error()}
		return
	}
	req.Start = !prewarm
	if prewarm {
		req.Config.Labels[LabelPrewarm] = "true"
	}
	counter := st.creating
	if prewarm {
		counter = st.preparing
	}
	counter[rev.Name]++
	st.launching[name] = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctr, err := c.cfg.Containers.Create(c.bg, req)
		if err == nil && prewarm {
			err = c.cfg.Containers.Prepare(c.bg, ctr.ID)
		}
		c.mu.Lock()
		counter[rev.Name]--
		delete(st.launching, name)
		if err != nil {
			c.event(st, api.EventWarning, "ReplicaFailed", "replica of %s failed to start: %v", rev.Name, err)
		}
		if ctr.ID != "" {
			r := st.replicas[ctr.ID]
			if r == nil {
				r = c.trackLocked(st, ctr)
			}
			if err != nil {
				c.replaceFailedLocked(st, r)
			}
		}
		c.mu.Unlock()
		c.enqueue(st.name)
	}()
}

// failedReplicaHold is how long a replica that could not be started is
// kept before it is replaced, so a start that keeps failing is retried at
// that pace and not in a tight loop.
const failedReplicaHold = 5 * time.Second

// replaceFailedLocked removes, after failedReplicaHold, a replica whose
// container could not be started; the next reconcile makes another.
func (c *Controller) replaceFailedLocked(st *appState, r *replica) {
	time.AfterFunc(failedReplicaHold, func() {
		if c.bg.Err() != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if st.replicas[r.id] == r {
			c.terminateLocked(st, r, "it could not be started")
		}
	})
}

// terminateLocked drains and removes a replica in the background: it
// leaves the route table at once, waits for its in-flight requests, then
// gets SIGTERM (SIGKILL after the grace period) and is removed.
func (c *Controller) terminateLocked(st *appState, r *replica, why string) {
	r.mu.Lock()
	if r.terminating {
		r.mu.Unlock()
		return
	}
	r.terminating = true
	r.mu.Unlock()
	c.updateRoutesLocked()
	c.log.Info("draining replica", "app", st.name, "replica", r.name, "why", why)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// The drain ends with the controller: a daemon that stops leaves the
		// replica running, and the next daemon drains it again.
		drain, cancel := context.WithTimeout(c.bg, c.cfg.DrainTimeout)
		err := c.cfg.Router.WaitIdle(drain, r.id)
		cancel()
		if c.bg.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("drain replica: stopping it with requests still in flight", "replica", r.name, "err", err)
		}
		r.stopProber()
		// The stop and the removal get a context of their own: the drain's
		// may have run out, and they must still happen.
		grace := 10 * time.Second
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.bg), grace+5*time.Minute)
		defer cancel()
		if err := c.cfg.Containers.Stop(ctx, r.id, &grace); err != nil && !isNotFound(err) {
			c.log.Warn("stop replica", "replica", r.name, "err", err)
		}
		// A remove that fails (the container busy in another operation, a
		// runtime hiccup) is tried again: nothing else would remove it.
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			err := c.cfg.Containers.Remove(ctx, r.id, true)
			if err == nil || isNotFound(err) {
				break
			}
			c.log.Warn("remove replica", "replica", r.name, "err", err, "retry in", wait)
			select {
			case <-c.bg.Done():
				return // the next daemon removes it
			case <-ctx.Done():
				// Let a later reconcile start over.
				r.mu.Lock()
				r.terminating = false
				r.mu.Unlock()
				c.enqueue(st.name)
				return
			case <-time.After(wait):
			}
		}
		c.enqueue(st.name)
	}()
}

// reconcileGone drains everything of a deleted App.
func (c *Controller) reconcileGone(ctx context.Context, st *appState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range st.replicas {
		c.terminateLocked(st, r, "the app was deleted")
	}
	if len(st.replicas) == 0 {
		delete(c.apps, st.name)
	}
	c.updateRoutesLocked()
	return nil
}

// pruneRevisionsLocked deletes the oldest revisions beyond the history
// limit that receive no traffic and have no replicas.
func (c *Controller) pruneRevisionsLocked(ctx context.Context, st *appState) {
	limit := 10
	if l := st.app.Spec.RevisionHistoryLimit; l != nil {
		limit = *l
	}
	routed := map[string]bool{}
	for _, t := range st.targets {
		routed[t.Revision] = true
	}
	for _, t := range st.app.Spec.Traffic {
		routed[t.Revision] = true
	}
	latest := st.revs[len(st.revs)-1].Name
	var idle []api.Revision
	for _, r := range st.revs {
		if !routed[r.Name] && r.Name != latest {
			idle = append(idle, r)
		}
	}
	for len(idle) > limit {
		victim := idle[0]
		idle = idle[1:]
		busy := false
		for _, r := range st.replicas {
			if r.rev == victim.Name {
				busy = true
			}
		}
		if busy {
			continue
		}
		if err := c.cfg.Store.DeleteRevision(ctx, victim.Name); err != nil {
			c.log.Warn("delete old revision", "revision", victim.Name, "err", err)
			continue
		}
		for i, r := range st.revs {
			if r.Name == victim.Name {
				st.revs = append(st.revs[:i], st.revs[i+1:]...)
				break
			}
		}
		delete(st.imageIDs, victim.Name)
	}
}

// statusLocked computes the App's status from what st holds.
func (c *Controller) statusLocked(st *appState) api.AppStatus {
	now := time.Now()
	a := app.Clone(st.app)
	s := &a.Status
	app.InitializeConditions(s, now)
	latestCreated := st.revs[len(st.revs)-1].Name
	latestReady := c.latestReadyLocked(st)
	s.ObservedGeneration = a.Metadata.Generation
	s.LatestCreatedRevision = latestCreated
	s.LatestReadyRevision = latestReady
	s.URL = "http://" + app.Host(a, c.cfg.Domain) + c.portSuffix()
	s.Traffic = nil
	for _, t := range st.targets {
		tt := api.TrafficTarget{Revision: t.Revision, Percent: t.Percent, Tag: t.Tag}
		if t.Tag != "" {
			tt.URL = "http://" + app.TagHost(a, t.Tag, c.cfg.Domain) + c.portSuffix()
		}
		s.Traffic = append(s.Traffic, tt)
	}
	desired := desiredReplicas(st.app, st.targets, latestCreated, latestReady == latestCreated, st.want)
	s.Replicas = api.ReplicaCounts{}
	for _, n := range desired {
		s.Replicas.Desired += n
	}
	for _, r := range st.replicas {
		if v := r.view(); v.ready && !v.terminating {
			s.Replicas.Ready++
		}
	}

	// Degraded: the first problem found, latest revision first.
	reason, msg := c.problemLocked(st, latestCreated)
	if reason == "" && latestReady != "" {
		for _, t := range st.targets {
			if r, m := c.problemLocked(st, t.Revision); r != "" {
				reason, msg = r, m
				break
			}
		}
	}
	if reason != "" {
		app.MarkDegraded(s, reason, msg, now)
		c.event(st, api.EventWarning, reason, "%s", msg)
	} else {
		app.MarkNotDegraded(s, now)
	}

	// Ready: every routed revision has a ready replica (or is at zero
	// replicas by choice after having been ready).
	allReady := len(st.targets) > 0
	for _, t := range st.targets {
		if t.Percent == 0 && t.Tag == "" {
			continue
		}
		rev := revisionNamed(st.revs, t.Revision)
		if c.readyReplicasLocked(st, t.Revision) == 0 && !(desired[t.Revision] == 0 && rev != nil && rev.Status.Ready) {
			allReady = false
		}
	}
	if allReady {
		app.MarkReady(s, now)
	} else if reason != "" {
		app.MarkNotReady(s, reason, msg, now)
	} else {
		app.MarkReadyUnknown(s, api.ReasonDeploying, "waiting for a ready replica", now)
	}

	if latestCreated != latestReady && reason == "" {
		app.MarkRolloutInProgress(s, api.ReasonDeploying, fmt.Sprintf("revision %s is starting", latestCreated), now)
	} else if latestCreated != latestReady {
		app.MarkRolloutInProgress(s, reason, fmt.Sprintf("revision %s is not ready: %s", latestCreated, msg), now)
	} else {
		wasRolling := false
		if cond, ok := app.GetCondition(st.app.Status, api.ConditionRolloutInProgress); ok && cond.Status == api.ConditionTrue {
			wasRolling = true
		}
		app.MarkRolloutComplete(s, now)
		if wasRolling {
			c.event(st, api.EventNormal, "RolloutComplete", "revision %s serves %s", latestCreated, trafficText(st.targets))
		}
	}
	return a.Status
}

func trafficText(ts []target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%d%% %s", t.Percent, t.Revision))
	}
	return strings.Join(parts, ", ")
}

func revisionNamed(revs []api.Revision, name string) *api.Revision {
	for i := range revs {
		if revs[i].Name == name {
			return &revs[i]
		}
	}
	return nil
}

// problemLocked says what keeps rev from serving, if anything.
func (c *Controller) problemLocked(st *appState, rev string) (reason, msg string) {
	if e, bad := st.revErrs[rev]; bad {
		return e.reason, e.message
	}
	if c.readyReplicasLocked(st, rev) > 0 {
		return "", ""
	}
	r := revisionNamed(st.revs, rev)
	for _, rp := range st.replicas {
		if rp.rev != rev {
			continue
		}
		v := rp.view()
		if v.terminating || rp.prewarm && v.status == api.StatusCreated {
			continue
		}
		switch {
		case v.oomKilled && v.restarts > 0:
			return api.ReasonOOMKilled, fmt.Sprintf("replica %s of %s was killed for using more than its memory limit (restarted %d times)", rp.name, rev, v.restarts)
		case v.restarts >= 2 || v.status == api.StatusRestarting && v.restarts >= 1:
			return api.ReasonCrashLoopBackOff, fmt.Sprintf("replica %s of %s keeps exiting (restarted %d times): see skiff logs %s", rp.name, rev, v.restarts, rp.name)
		case !v.failingFor.IsZero() && r != nil && time.Since(v.failingFor) > probeDeadline(r.Spec):
			return api.ReasonProbeFailed, fmt.Sprintf("replica %s of %s did not become ready within %s: %s", rp.name, rev, probeDeadline(r.Spec), v.lastErr)
		}
	}
	return "", ""
}

// probeDeadline is how long a replica may stay unready before its
// revision counts as failing its probes.
func probeDeadline(rs api.RevisionSpec) time.Duration {
	startup, readiness, _ := probeConfig(rs.Probes, rs.Port)
	d := 5*time.Second + readiness.InitialDelay.Duration + readiness.Period.Duration*time.Duration(readiness.FailureThreshold)
	if startup != nil {
		d += startup.InitialDelay.Duration + startup.Period.Duration*time.Duration(startup.FailureThreshold)
	}
	return d
}

func (c *Controller) portSuffix() string {
	if c.cfg.URLPort == 0 || c.cfg.URLPort == 80 {
		return ""
	}
	return fmt.Sprintf(":%d", c.cfg.URLPort)
}
