package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// labelReplicaApp is the label skiff puts on the containers of an App's
// replicas, naming the App.
const labelReplicaApp = "skiff.dev/app"

// appGoneTimeout bounds the wait for a deleted App's replicas to be
// removed (they drain first).
const appGoneTimeout = 2 * time.Minute

// appSet is the services of p that run as Apps (see AppServices).
func appSet(p *types.Project, all bool) (map[string]bool, error) {
	names, err := AppServices(p, all)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	return set, nil
}

// isApp reports whether service runs as an App in the current Up.
func (e *Engine) isApp(service string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apps[service]
}

// ProjectApps lists the Apps of project (labelled with it), by name.
func (e *Engine) ProjectApps(ctx context.Context, project string) ([]api.App, error) {
	all, err := e.C.Apps(ctx)
	if err != nil {
		return nil, err
	}
	var out []api.App
	for _, a := range all {
		if a.Metadata.Labels[LabelProject] == project {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out, nil
}

// upApp applies the App of service s through the apply API (a changed
// service makes a new revision, an unchanged one changes nothing), after
// removing the containers the service ran as before.
func (e *Engine) upApp(ctx context.Context, p *types.Project, s types.ServiceConfig, old []api.Container) error {
	if err := e.each(ctx, old, e.stopRemove); err != nil {
		return err
	}
	a, err := AppFor(p, s)
	if err != nil {
		return err
	}
	name := a.Metadata.Name
	prev, err := e.C.App(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if exists && prev.Metadata.Labels[LabelProject] != p.Name {
		return errdefs.Conflict("service %s: App %s exists and is not project %s's: delete it or rename the project", s.Name, name, p.Name)
	}
	got, err := e.C.ApplyApp(ctx, a)
	if err != nil {
		return fmt.Errorf("service %s: apply App %s: %w", s.Name, name, err)
	}
	switch {
	case !exists:
		e.progress("App %s  Created", name)
	case got.Metadata.Generation != prev.Metadata.Generation:
		e.noteChanged(s.Name)
		e.progress("App %s  Updated", name)
	default:
		e.progress("App %s  Unchanged", name)
	}
	return nil
}

// waitAppReady returns once the App of service serves its latest spec
// (Ready, its latest revision ready), or fails when the App reports a
// problem that waiting does not cure.
func (e *Engine) waitAppReady(ctx context.Context, p *types.Project, service string) error {
	name := p.Name + "-" + service
	err := waitUntil(ctx, 200*time.Millisecond, func() (bool, error) {
		a, err := e.C.App(ctx, name)
		if err != nil {
			return false, err
		}
		return appServes(a)
	})
	if err != nil {
		return fmt.Errorf("service %s (App %s): %w", service, name, err)
	}
	return nil
}

// appServes reports whether a serves its latest spec; an error says why
// it cannot.
func appServes(a api.App) (bool, error) {
	st := a.Status
	if st.ObservedGeneration != a.Metadata.Generation {
		return false, nil
	}
	for _, c := range st.Conditions {
		if c.Type != api.ConditionReady {
			continue
		}
		if c.Status == api.ConditionTrue {
			return st.LatestCreatedRevision != "" && st.LatestReadyRevision == st.LatestCreatedRevision, nil
		}
		switch c.Reason {
		case api.ReasonImageNotFound, api.ReasonSecretNotFound, api.ReasonNetworkNotFound, api.ReasonProbeFailed,
			api.ReasonCrashLoopBackOff, api.ReasonOOMKilled:
			return false, fmt.Errorf("not ready: %s: %s", c.Reason, c.Message)
		}
	}
	return false, nil
}

// removeApps deletes the project's Apps that keep does not name, waits
// until their replicas are gone (so the project's networks can go), and
// with volumes removes their named volumes.
func (e *Engine) removeApps(ctx context.Context, project string, keep func(api.App) bool, volumes bool) error {
	apps, err := e.ProjectApps(ctx, project)
	if err != nil {
		return err
	}
	apps = slices.DeleteFunc(apps, keep)
	for _, a := range apps {
		if err := e.C.DeleteApp(ctx, a.Metadata.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("delete App %s: %w", a.Metadata.Name, err)
		}
	}
	for _, a := range apps {
		if err := e.waitReplicasGone(ctx, a.Metadata.Name); err != nil {
			return err
		}
		e.progress("App %s  Removed", a.Metadata.Name)
		if !volumes {
			continue
		}
		for _, v := range a.Spec.Volumes {
			if v.Secret != nil {
				continue
			}
			if err := e.C.RemoveVolume(ctx, v.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("remove volume %s of App %s: %w", v.Name, a.Metadata.Name, err)
			}
			e.progress("Volume %s  Removed", v.Name)
		}
	}
	return nil
}

// waitReplicasGone waits until no container of App name is left.
func (e *Engine) waitReplicasGone(ctx context.Context, name string) error {
	wctx, cancel := context.WithTimeout(ctx, appGoneTimeout)
	defer cancel()
	err := waitUntil(wctx, 100*time.Millisecond, func() (bool, error) {
		cs, err := e.C.Containers(wctx, true)
		if err != nil {
			return false, err
		}
		for _, c := range cs {
			if c.Config.Labels[labelReplicaApp] == name {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the replicas of App %s to be removed: %w", name, err)
	}
	return nil
}

// settleApps, at the start of Up, deletes the project's Apps whose
// service now runs as containers, and warns about (or with
// removeOrphans deletes) those whose service left the project.
func (e *Engine) settleApps(ctx context.Context, p *types.Project, apps map[string]bool, removeOrphans bool) error {
	return e.removeApps(ctx, p.Name, func(a api.App) bool {
		svc := a.Metadata.Labels[LabelService]
		_, inProject := p.Services[svc]
		_, disabled := p.DisabledServices[svc]
		switch {
		case apps[svc]:
			return true
		case inProject:
			return false
		case removeOrphans:
			return false
		case !disabled:
			e.progress("App %s  Orphan (service %s is not in the project: --remove-orphans removes it)", a.Metadata.Name, svc)
		}
		return true
	}, false)
}
