package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/identity"
	"skiff.dev/skiff/internal/probe"
	"skiff.dev/skiff/internal/store"
)

// reconcile converges one App in three steps: observe (the store, the
// containers, the probers' view of them), decide (decide: pure, no store,
// no goroutines, no clock) and act (start, create and drain replicas in
// the background, update the routes, write revisions and status). It
// never blocks on containers starting or draining: those enqueue the App
// again when done. No store write happens under c.mu.
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
	// A new revision when the runnable part of the spec changed, and each
	// revision's image, pinned once.
	if err := c.ensureRevision(ctx, st); err != nil {
		return err
	}
	for _, r := range st.revs {
		c.resolveImage(ctx, st, r)
		c.checkNetworks(ctx, st, r)
	}

	c.mu.Lock()
	o := c.observeLocked(st)
	c.findNeverStartedLocked(st, o.Replicas)
	d, err := decide(o, time.Now())
	if err == nil {
		c.actLocked(st, d)
	}
	read := st.app.Metadata.ResourceVersion
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.storeRevisions(ctx, d); err != nil {
		return err
	}
	if !d.StatusChanged {
		return nil
	}
	return c.writeStatus(ctx, st, read, d.Status)
}

// observeLocked is what st holds, as decide's input. The caller holds
// c.mu.
func (c *Controller) observeLocked(st *appState) observed {
	o := observed{App: st.app, Revs: st.revs, ImageIDs: st.imageIDs, RevErrs: st.revErrs,
		Creating: st.creating, Preparing: st.preparing, Want: st.want, Domain: c.cfg.Domain, URLPort: c.cfg.URLPort}
	for _, r := range st.replicas {
		o.Replicas = append(o.Replicas, r.state())
	}
	sort.Slice(o.Replicas, func(i, j int) bool { return o.Replicas[i].ID < o.Replicas[j].ID })
	return o
}

// actLocked carries out a decision in memory and starts its background
// work; storeRevisions writes its revisions. The caller holds c.mu.
func (c *Controller) actLocked(st *appState, d decision) {
	st.revs, st.targets = d.Revs, d.Targets
	for _, name := range d.Prune {
		delete(st.imageIDs, name)
	}
	for rev, e := range d.RevErrs {
		st.revErrs[rev] = e
	}
	for _, id := range d.Start {
		if r := st.replicas[id]; r != nil {
			c.startPrewarmedLocked(st, r)
		}
	}
	for _, cr := range d.Create {
		if rev := revisionNamed(st.revs, cr.Revision); rev != nil {
			c.createReplicaLocked(st, *rev, st.imageIDs[cr.Revision], cr.Prewarm)
		}
	}
	for _, t := range d.Terminate {
		if r := st.replicas[t.ID]; r != nil {
			c.terminateLocked(st, r, t.Why)
		}
	}
	c.updateRoutesLocked()
	for _, e := range d.Events {
		c.event(st, e.Type, e.Reason, "%s", e.Message)
	}
}

// storeRevisions writes what a decision changed of the revisions: those
// ready for the first time, and those pruned.
func (c *Controller) storeRevisions(ctx context.Context, d decision) error {
	for _, name := range d.ReadyRevisions {
		if r := revisionNamed(d.Revs, name); r != nil {
			if err := c.cfg.Store.PutRevision(ctx, *r); err != nil {
				return err
			}
		}
	}
	for _, name := range d.Prune {
		if err := c.cfg.Store.DeleteRevision(ctx, name); err != nil {
			c.log.Warn("delete old revision", "revision", name, "err", err)
		}
	}
	return nil
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

// ensureRevision stores and adds to st the revision nextRevision asks for.
func (c *Controller) ensureRevision(ctx context.Context, st *appState) error {
	vers, err := c.secretVersions(ctx, st.app)
	if err != nil {
		return err
	}
	rev, err := nextRevision(st.app, st.revs, vers, time.Now())
	if err != nil || rev == nil {
		return err
	}
	if err := c.cfg.Store.PutRevision(ctx, *rev); err != nil {
		return err
	}
	c.mu.Lock()
	st.revs = append(st.revs, *rev)
	c.mu.Unlock()
	c.event(st, api.EventNormal, "RevisionCreated", "created revision %s (image %s)", rev.Name, rev.Spec.Image)
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
	if strings.HasPrefix(rev.Status.ImageDigest, "sha256:") {
		// Once pinned, always the same image.
		ref = rev.Status.ImageDigest
	}
	id, _, err := c.cfg.Images.ResolveID(ctx, ref)
	c.mu.Lock()
	if err != nil {
		st.revErrs[rev.Name] = revError{api.ReasonImageNotFound, fmt.Sprintf("revision %s: %v", rev.Name, err)}
		c.mu.Unlock()
		return
	}
	delete(st.revErrs, rev.Name)
	st.imageIDs[rev.Name] = id
	var pinned *api.Revision
	if r := revisionNamed(st.revs, rev.Name); r != nil && r.Status.ImageDigest == "" {
		r.Status.ImageDigest = id
		cp := *r
		pinned = &cp
	}
	c.mu.Unlock()
	if pinned != nil {
		if err := c.cfg.Store.PutRevision(ctx, *pinned); err != nil {
			c.log.Warn("pin revision image", "revision", rev.Name, "err", err)
		}
	}
}

// checkNetworks records, for a revision whose image resolved, whether the
// further networks its replicas join exist and can be joined: one that
// does not, or cannot, is the revision's NetworkNotFound problem, cleared
// once every network is fine.
func (c *Controller) checkNetworks(ctx context.Context, st *appState, rev api.Revision) {
	if c.cfg.Networks == nil || len(rev.Spec.Networks) == 0 {
		return
	}
	c.mu.Lock()
	_, resolved := st.imageIDs[rev.Name]
	c.mu.Unlock()
	if !resolved {
		return
	}
	var missing error
	for _, x := range containerNetworks(rev.Spec.Networks) {
		err := c.cfg.Networks.CheckAttachments(ctx, api.DefaultNetwork, []api.NetworkAttachment{x})
		switch {
		case isNotFound(err):
			missing = fmt.Errorf("network %s does not exist: create it with skiff network create %s, or remove it from spec.network.networks", x.Network, x.Network)
		case err != nil:
			// A replica could not be made either (a CNI network cannot be
			// a further one): none is tried until this changes.
			missing = fmt.Errorf("network %s cannot be joined: %w", x.Network, err)
		}
		if missing != nil {
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, had := st.revErrs[rev.Name]
	// Any other problem (image, secret) comes first; it is not replaced.
	switch {
	case missing != nil && (!had || e.reason == api.ReasonNetworkNotFound):
		st.revErrs[rev.Name] = revError{api.ReasonNetworkNotFound, fmt.Sprintf("revision %s: %v", rev.Name, missing)}
	case missing == nil && had && e.reason == api.ReasonNetworkNotFound:
		delete(st.revErrs, rev.Name)
	}
}

// planLocked is a plan over what st holds now, for the readers of the
// controller's view (API, metrics). The caller holds c.mu.
func (c *Controller) planLocked(st *appState) *plan {
	p := newPlan(c.observeLocked(st), time.Now())
	p.d.Targets = st.targets
	return p
}

// latestReadyLocked is the newest revision that has been ready.
func (c *Controller) latestReadyLocked(st *appState) string {
	return c.planLocked(st).latestReady()
}

// problemLocked says what keeps rev from serving, if anything.
func (c *Controller) problemLocked(st *appState, rev string) (reason, msg string) {
	return c.planLocked(st).problem(rev)
}

// readyReplicasLocked counts the ready replicas of rev that are not
// draining.
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
	p := &probe.Prober{ID: r.id, Port: r.port, Probes: r.probes, Runtime: probeRuntime{c.cfg.Containers},
		Reporter: replicaReporter{c, r}, Wake: r.wakeCh}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		p.Run(ctx)
	}()
	return r
}

// findNeverStartedLocked marks the replicas that are not prewarmed, not
// being created or started, and whose container is still created.
func (c *Controller) findNeverStartedLocked(st *appState, rs []replicaState) {
	for i, r := range rs {
		if !r.Prewarm && r.status == api.StatusCreated && !r.Starting && !st.launching[r.Name] {
			rs[i].NeverStarted = c.neverStarted(st.replicas[r.ID])
		}
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
	identity := rev.Spec.Identity
	go func() {
		defer c.wg.Done()
		var ctr api.Container
		err := c.addIdentity(&req, st.name, rev.Name, identity)
		if err == nil {
			ctr, err = c.cfg.Containers.Create(c.bg, req)
		}
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

// addIdentity gives the replica req creates its identity token, mounted
// read-only at identity.MountPath, when its revision asks for one.
func (c *Controller) addIdentity(req *api.ContainerCreateRequest, app, revision string, id api.AppIdentity) error {
	if !id.Enabled {
		return nil
	}
	if c.cfg.Identities == nil {
		return errdefs.Unavailable("spec.identity: this daemon issues no identities")
	}
	dir, err := c.cfg.Identities.Issue(app, revision, req.Name, id.Audiences)
	if err != nil {
		return fmt.Errorf("spec.identity: issue the replica's token: %w", err)
	}
	req.Config.Mounts = append(req.Config.Mounts, api.Mount{Type: api.MountBind, Source: dir, Target: identity.MountPath, ReadOnly: true})
	return nil
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
		if c.cfg.BeforeStop != nil {
			c.cfg.BeforeStop(drain)
		}
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
				if c.cfg.Identities != nil {
					c.cfg.Identities.Forget(r.name)
				}
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
