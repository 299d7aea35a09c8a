package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/store"
)

// Apply creates or updates an App from its desired state and returns it
// as stored. Invalid Apps are ErrInvalid with every field error listed,
// and change nothing. Status in the input is ignored; so are uid,
// generation and creationTimestamp. Without metadata.resourceVersion the
// spec replaces the stored one whatever its version (a write that races
// with another is read again and retried); with one, the App is written
// only if it is still at that version, else the result is ErrConflict and
// nothing changes. metadata.generation grows by one exactly when the
// spec changes.
func (c *Controller) Apply(ctx context.Context, in api.App) (api.App, error) {
	in, err := prepare(in)
	if err != nil {
		return api.App{}, err
	}
	unlock, err := c.appLocks.lock(ctx, in.Metadata.Name)
	if err != nil {
		return api.App{}, err
	}
	defer unlock()
	if in.Metadata.ResourceVersion != "" {
		return c.applyOnce(ctx, in)
	}
	return retryOnConflict(ctx, func() (api.App, error) { return c.applyOnce(ctx, in) })
}

// prepare makes an App as it is stored, without status, and validates it.
func prepare(in api.App) (api.App, error) {
	in.Status = api.AppStatus{}
	app.SetDefaults(&in)
	return in, app.Validate(in).Err()
}

// applyOnce writes in over the App as it is stored now: on condition that
// the App is still at the version read here, or at in's resourceVersion
// when in has one. A race lost is a *store.StaleError.
func (c *Controller) applyOnce(ctx context.Context, in api.App) (api.App, error) {
	name, want := in.Metadata.Name, in.Metadata.ResourceVersion
	old, err := c.cfg.Store.GetApp(ctx, name)
	switch {
	case isNotFound(err) && want != "":
		return api.App{}, &store.StaleError{Kind: "app", Name: name, Read: want}
	case isNotFound(err):
		in.Metadata.UID = newUID()
		in.Metadata.Generation = 1
		in.Metadata.CreationTimestamp = time.Now().UTC()
		if err := c.checkTraffic(ctx, in); err != nil {
			return api.App{}, err
		}
		out, err := c.cfg.Store.CreateApp(ctx, in)
		if errors.Is(err, errdefs.ErrConflict) {
			// Created meanwhile: the next attempt updates it.
			return api.App{}, &store.StaleError{Kind: "app", Name: name}
		}
		if err != nil {
			return api.App{}, err
		}
		c.routeNew(out)
		c.enqueue(name)
		return out, nil
	case err != nil:
		return api.App{}, err
	case want != "" && want != old.Metadata.ResourceVersion:
		return api.App{}, &store.StaleError{Kind: "app", Name: name, Read: want, Current: old.Metadata.ResourceVersion}
	}
	in.Metadata.UID = old.Metadata.UID
	in.Metadata.CreationTimestamp = old.Metadata.CreationTimestamp
	in.Metadata.Generation = old.Metadata.Generation
	in.Metadata.ResourceVersion = old.Metadata.ResourceVersion
	in.Status = old.Status
	if !reflect.DeepEqual(normalized(old.Spec), normalized(in.Spec)) {
		in.Metadata.Generation++
	} else if reflect.DeepEqual(old.Metadata, in.Metadata) {
		return old, nil // unchanged
	}
	if err := c.checkTraffic(ctx, in); err != nil {
		return api.App{}, err
	}
	out, err := c.cfg.Store.UpdateApp(ctx, in)
	if err != nil {
		return api.App{}, err
	}
	c.enqueue(name)
	return out, nil
}

// maxConflictRetries bounds how often a verb reads and writes again after
// losing a race with another write of the same App.
const maxConflictRetries = 50

// retryOnConflict runs one read-modify-write until it does not lose a
// race (a *store.StaleError), waiting a little longer each time. Other
// errors, and the race lost maxConflictRetries times, are returned.
func retryOnConflict(ctx context.Context, once func() (api.App, error)) (api.App, error) {
	wait := time.Millisecond
	for i := 0; ; i++ {
		out, err := once()
		var stale *store.StaleError
		if !errors.As(err, &stale) || i == maxConflictRetries {
			return out, err
		}
		select {
		case <-ctx.Done():
			return api.App{}, ctx.Err()
		case <-time.After(wait + time.Duration(mrand.Int64N(int64(wait)))):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// normalized makes equal specs compare equal (nil vs empty).
func normalized(s api.AppSpec) api.AppSpec {
	a := app.Clone(api.App{Spec: s})
	return a.Spec
}

// checkTraffic refuses traffic targets naming revisions that don't exist
// (unless they are the revision this apply creates).
func (c *Controller) checkTraffic(ctx context.Context, a api.App) error {
	var named []string
	for _, t := range a.Spec.Traffic {
		if t.Revision != "" {
			named = append(named, t.Revision)
		}
	}
	if len(named) == 0 {
		return nil
	}
	revs, err := c.cfg.Store.ListRevisions(ctx, a.Metadata.Name)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, r := range revs {
		have[r.Name] = true
	}
	var errs app.FieldErrors
	for i, t := range a.Spec.Traffic {
		if t.Revision != "" && !have[t.Revision] {
			errs = append(errs, &app.FieldError{Path: fmt.Sprintf("spec.traffic[%d].revision", i), Message: fmt.Sprintf("revision %q does not exist: see skiff get revisions", t.Revision)})
		}
	}
	return errs.Err()
}

func newUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Get returns an App with its current status.
func (c *Controller) Get(ctx context.Context, name string) (api.App, error) {
	a, err := c.cfg.Store.GetApp(ctx, name)
	if isNotFound(err) {
		return api.App{}, errdefs.NotFound("app %q not found: see skiff get apps", name)
	}
	return a, err
}

// List returns every App, by name.
func (c *Controller) List(ctx context.Context) ([]api.App, error) {
	apps, err := c.cfg.Store.ListApps(ctx)
	sort.Slice(apps, func(i, j int) bool { return apps[i].Metadata.Name < apps[j].Metadata.Name })
	return apps, err
}

// Delete deletes an App; its replicas drain and stop in the background.
func (c *Controller) Delete(ctx context.Context, name string) error {
	if _, err := c.Get(ctx, name); err != nil {
		return err
	}
	if err := c.cfg.Store.DeleteApp(ctx, name); err != nil {
		return err
	}
	if c.cfg.IDRanges != nil {
		if err := c.cfg.IDRanges.ReleaseIDRange(ctx, idRangeOwner(name)); err != nil {
			c.log.Warn("free the user namespace id range of a deleted App", "app", name, "err", err)
		}
	}
	c.enqueue(name)
	return nil
}

// Revisions returns an App's revisions, oldest first, with replica counts.
func (c *Controller) Revisions(ctx context.Context, name string) ([]api.Revision, error) {
	if _, err := c.Get(ctx, name); err != nil {
		return nil, err
	}
	revs, err := c.cfg.Store.ListRevisions(ctx, name)
	if err != nil {
		return nil, err
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Name < revs[j].Name })
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.apps[name]; st != nil {
		latestCreated := ""
		if len(st.revs) > 0 {
			latestCreated = st.revs[len(st.revs)-1].Name
		}
		desired := desiredReplicas(st.app, st.targets, latestCreated, c.latestReadyLocked(st) == latestCreated, st.want)
		for i := range revs {
			revs[i].Status.Replicas = api.ReplicaCounts{Desired: desired[revs[i].Name], Ready: c.readyReplicasLocked(st, revs[i].Name)}
			if e, ok := st.revErrs[revs[i].Name]; ok {
				revs[i].Status.Reason, revs[i].Status.Message = e.reason, e.message
			} else if r, m := c.problemLocked(st, revs[i].Name); r != "" {
				revs[i].Status.Reason, revs[i].Status.Message = r, m
			}
		}
	}
	return revs, nil
}

// Replicas returns the replicas of an App (all Apps when name is "").
func (c *Controller) Replicas(ctx context.Context, name string) ([]api.Replica, error) {
	if name != "" {
		if _, err := c.Get(ctx, name); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []api.Replica
	for n, st := range c.apps {
		if name != "" && n != name {
			continue
		}
		for _, r := range st.replicas {
			v := r.view()
			state := api.ReplicaRunning
			switch {
			case v.terminating:
				state = api.ReplicaTerminating
			case v.status == api.StatusRestarting || v.status == api.StatusExited:
				state = api.ReplicaFailed
			case v.status == api.StatusCreated && r.prewarm:
				state = api.ReplicaPrewarmed
			case !v.ready && !v.everReady:
				state = api.ReplicaStarting
			}
			out = append(out, api.Replica{Name: r.name, Revision: r.rev, App: n, ContainerID: r.id, IP: v.ip, Ready: v.ready && !v.terminating, State: state, Restarts: v.restarts, Created: r.created})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Revision != out[j].Revision {
			return out[i].Revision < out[j].Revision
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// patch applies fn to the stored App and stores the result (validated
// like an apply) if the App is still as read; a race lost to another
// write is read and patched again.
func (c *Controller) patch(ctx context.Context, name string, fn func(a *api.App) error) (api.App, error) {
	unlock, err := c.appLocks.lock(ctx, name)
	if err != nil {
		return api.App{}, err
	}
	defer unlock()
	return retryOnConflict(ctx, func() (api.App, error) {
		a, err := c.Get(ctx, name)
		if err != nil {
			return api.App{}, err
		}
		a = app.Clone(a)
		if err := fn(&a); err != nil {
			return api.App{}, err
		}
		if a, err = prepare(a); err != nil {
			return api.App{}, err
		}
		return c.applyOnce(ctx, a)
	})
}

// SetTraffic replaces an App's traffic split.
func (c *Controller) SetTraffic(ctx context.Context, name string, traffic []api.TrafficTarget) (api.App, error) {
	return c.patch(ctx, name, func(a *api.App) error {
		a.Spec.Traffic = traffic
		return nil
	})
}

// Rollback sends all traffic to revision to, or to the newest ready
// revision before the one serving now when to is "".
func (c *Controller) Rollback(ctx context.Context, name, to string) (api.App, error) {
	return c.patch(ctx, name, func(a *api.App) error {
		revs, err := c.cfg.Store.ListRevisions(ctx, name)
		if err != nil {
			return err
		}
		sort.Slice(revs, func(i, j int) bool { return revs[i].Name < revs[j].Name })
		if to == "" {
			// The newest revision receiving traffic is the one to leave.
			current := ""
			for _, t := range a.Status.Traffic {
				if t.Percent > 0 && t.Revision > current {
					current = t.Revision
				}
			}
			if current == "" {
				current = a.Status.LatestReadyRevision
			}
			for i := len(revs) - 1; i >= 0; i-- {
				if revs[i].Name < current && revs[i].Status.Ready {
					to = revs[i].Name
					break
				}
			}
			if to == "" {
				return errdefs.Conflict("app %s has no ready revision older than %s to roll back to", name, current)
			}
		}
		if !strings.HasPrefix(to, name+"-") {
			to = app.RevisionName(name, atoiOr(to, -1))
		}
		found := false
		for _, r := range revs {
			if r.Name == to {
				found = true
			}
		}
		if !found {
			return errdefs.NotFound("app %s has no revision %s: see skiff get revisions %s", name, to, name)
		}
		a.Spec.Traffic = []api.TrafficTarget{{Revision: to, Percent: 100}}
		return nil
	})
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" {
		return def
	}
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return def
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

// Scale changes an App's replica bounds (nil leaves one as it is).
func (c *Controller) Scale(ctx context.Context, name string, lo, hi *int) (api.App, error) {
	return c.patch(ctx, name, func(a *api.App) error {
		if lo != nil {
			a.Spec.Scale.Min = lo
		}
		if hi != nil {
			a.Spec.Scale.Max = hi
		}
		return nil
	})
}
