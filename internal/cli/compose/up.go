package compose

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// UpOptions are `compose up`'s flags.
type UpOptions struct {
	Services []string // empty: all the enabled services
	// Apps runs every service as an App, not only those marked
	// x-skiff: {app: true}.
	Apps          bool
	Build         bool // build images of services with a build section first
	ForceRecreate bool
	RemoveOrphans bool
	// Wait returns only once every service runs and is healthy.
	Wait        bool
	WaitTimeout time.Duration // 0: no limit
	// Builder builds a service's image (set by the CLI, which reads the
	// build context); nil refuses services that must be built.
	Builder func(ctx context.Context, p *types.Project, s types.ServiceConfig) error
}

// Up creates what is missing and recreates what changed, service by
// service in dependency order (independent services in parallel),
// waiting for each depends_on condition before starting a dependent.
// Unchanged containers keep running.
func (e *Engine) Up(ctx context.Context, p *types.Project, o UpOptions) error {
	e.health = nil
	if len(o.Services) > 0 {
		var err error
		if p, err = p.WithSelectedServices(o.Services); err != nil {
			return errdefs.Invalid("%v", err)
		}
	}
	apps, err := appSet(p, o.Apps)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.apps, e.changed = apps, map[string]bool{}
	e.mu.Unlock()
	if err := e.checkSecrets(ctx, p); err != nil {
		return err
	}
	if err := e.images(ctx, p, o); err != nil {
		return err
	}
	if err := e.ensureNetworks(ctx, p); err != nil {
		return err
	}
	if err := e.ensureVolumes(ctx, p); err != nil {
		return err
	}
	existing, err := e.Containers(ctx, p.Name, false)
	if err != nil {
		return err
	}
	if err := e.orphans(ctx, p, existing, o.RemoveOrphans); err != nil {
		return err
	}
	if err := e.settleApps(ctx, p, apps, o.RemoveOrphans); err != nil {
		return err
	}
	have := byService(existing)
	err = graph.InDependencyOrder(ctx, p, func(ctx context.Context, name string, s types.ServiceConfig) error {
		if err := e.waitDependencies(ctx, p, s); err != nil {
			return err
		}
		if apps[name] {
			return e.upApp(ctx, p, s, have[name])
		}
		if err := e.converge(ctx, p, s, have[name], o.ForceRecreate); err != nil {
			return err
		}
		return e.restartForDependencies(ctx, p, s)
	})
	if err != nil || !o.Wait {
		return err
	}
	wctx := ctx
	if o.WaitTimeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
		defer cancel()
	}
	return e.waitAll(wctx, p)
}

// images builds (with Build, or when missing) the images of services
// with a build section, and pulls missing images that name a registry.
func (e *Engine) images(ctx context.Context, p *types.Project, o UpOptions) error {
	for _, name := range sortedServices(p) {
		s := p.Services[name]
		ref := ImageName(p, s)
		_, err := e.C.Image(ctx, ref)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		missing := err != nil
		switch {
		case s.Build != nil && (o.Build || missing):
			if o.Builder == nil {
				return errdefs.Invalid("service %s must be built: run `skiff compose build` first", name)
			}
			if err := o.Builder(ctx, p, s); err != nil {
				return fmt.Errorf("build service %s: %w", name, err)
			}
		case missing && hasRegistry(ref):
			if _, err := e.C.PullImage(ctx, api.ImagePullRequest{Ref: ref}); err != nil {
				return fmt.Errorf("pull image of service %s: %w", name, err)
			}
			e.progress("Image %s  Pulled", ref)
		case missing:
			return errdefs.NotFound("service %s: image %s is not in the store: build it, import it or give a registry in its name", name, ref)
		}
	}
	return nil
}

func hasRegistry(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// orphans warns about, or removes, containers of services that are no
// longer in the project.
func (e *Engine) orphans(ctx context.Context, p *types.Project, existing []api.Container, remove bool) error {
	for _, c := range existing {
		svc := c.Config.Labels[LabelService]
		if _, ok := p.Services[svc]; ok {
			continue
		}
		if _, ok := p.DisabledServices[svc]; ok {
			continue
		}
		if !remove {
			e.progress("Container %s  Orphan (service %s is not in the project: --remove-orphans removes it)", c.Name, svc)
			continue
		}
		if err := e.stopRemove(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// waitDependencies waits for the conditions of s's depends_on.
func (e *Engine) waitDependencies(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	for _, dep := range sortedKeys(s.DependsOn) {
		d := s.DependsOn[dep]
		ds, ok := p.Services[dep]
		if !ok {
			continue // not selected, or optional and disabled
		}
		if e.isApp(dep) {
			// An App is started once it is ready (its healthcheck is its
			// readiness probe).
			if err := e.waitAppReady(ctx, p, dep); err != nil {
				return fmt.Errorf("dependency of %s: %w", s.Name, err)
			}
			continue
		}
		switch d.Condition {
		case types.ServiceConditionHealthy:
			if err := e.waitHealthy(ctx, p, ds); err != nil {
				return fmt.Errorf("dependency of %s: %w", s.Name, err)
			}
		case types.ServiceConditionCompletedSuccessfully:
			ctrs, err := e.serviceContainers(ctx, p.Name, dep)
			if err != nil {
				return err
			}
			for _, c := range ctrs {
				res, err := e.C.Wait(ctx, c.ID, "not-running")
				if err != nil {
					return err
				}
				if res.ExitCode != 0 {
					return fmt.Errorf("service %s, a dependency of %s, did not complete successfully: container %s exited with code %d", dep, s.Name, c.Name, res.ExitCode)
				}
			}
		}
	}
	return nil
}

// waitAll returns once every container of p runs (healthy where the
// service has a healthcheck), or fails naming the first service that
// does not. A container that exited 0 is done, not failed, when others
// depend on it completing.
func (e *Engine) waitAll(ctx context.Context, p *types.Project) error {
	completes := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				completes[dep] = true
			}
		}
	}
	for _, name := range sortedServices(p) {
		s := p.Services[name]
		if e.isApp(name) {
			if err := e.waitAppReady(ctx, p, name); err != nil {
				return err
			}
			e.progress("App %s-%s  Ready", p.Name, name)
			continue
		}
		ctrs, err := e.serviceContainers(ctx, p.Name, name)
		if err != nil {
			return err
		}
		for _, c := range ctrs {
			if c.State.Status == api.StatusExited && !(completes[name] && c.State.ExitCode == 0) {
				return fmt.Errorf("service %s is not running: container %s exited with code %d", name, c.Name, c.State.ExitCode)
			}
		}
		h, err := e.healthcheck(ctx, p, s)
		if err != nil {
			return err
		}
		if healthTest(h) != nil {
			if err := e.waitHealthy(ctx, p, s); err != nil {
				return err
			}
			e.progress("Service %s  Healthy", name)
		}
	}
	return nil
}
