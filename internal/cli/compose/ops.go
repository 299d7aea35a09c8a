package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

// DownOptions are `compose down`'s flags.
type DownOptions struct {
	Volumes       bool // also remove the project's named volumes
	RemoveOrphans bool
}

// Down deletes the project's Apps, stops and removes its containers
// (dependents first), then its networks and the secrets it copied into
// skiff's store, and with Volumes its named volumes and those of its
// Apps.
func (e *Engine) Down(ctx context.Context, p *types.Project, o DownOptions) error {
	if err := e.removeApps(ctx, p.Name, func(api.App) bool { return false }, o.Volumes); err != nil {
		return err
	}
	existing, err := e.Containers(ctx, p.Name, false)
	if err != nil {
		return err
	}
	oneoff, err := e.Containers(ctx, p.Name, true)
	if err != nil {
		return err
	}
	have := byService(existing)
	err = graph.InDependencyOrder(ctx, p, func(ctx context.Context, name string, _ types.ServiceConfig) error {
		return e.each(ctx, have[name], e.stopRemove)
	}, graph.InReverseOrder)
	if err != nil {
		return err
	}
	for _, c := range append(existing, oneoff...) {
		if _, ok := p.Services[c.Config.Labels[LabelService]]; ok && c.Config.Labels[LabelOneoff] != "True" {
			continue
		}
		if _, ok := p.DisabledServices[c.Config.Labels[LabelService]]; ok || o.RemoveOrphans || c.Config.Labels[LabelOneoff] == "True" {
			if err := e.stopRemove(ctx, c); err != nil {
				return err
			}
		}
	}
	nets, err := e.C.Networks(ctx)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Labels[LabelProject] != p.Name {
			continue
		}
		if err := e.C.RemoveNetwork(ctx, n.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
		e.progress("Network %s  Removed", n.Name)
	}
	if err := e.removeProjectSecrets(ctx, p.Name); err != nil {
		return err
	}
	if o.Volumes {
		return e.removeVolumes(ctx, p)
	}
	return nil
}

// each runs fn on every container in parallel and returns the first error.
func (e *Engine) each(ctx context.Context, cs []api.Container, fn func(context.Context, api.Container) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(ctx, c)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// selected is the project's containers of the named services (all when
// none is named); naming a service that is not in the project is an
// error.
func (e *Engine) selected(ctx context.Context, p *types.Project, services []string) (map[string][]api.Container, error) {
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			return nil, errdefs.NotFound("no service %s in project %s", s, p.Name)
		}
	}
	cs, err := e.Containers(ctx, p.Name, false)
	if err != nil {
		return nil, err
	}
	m := byService(cs)
	if len(services) == 0 {
		return m, nil
	}
	out := map[string][]api.Container{}
	for _, s := range services {
		out[s] = m[s]
	}
	return out, nil
}

// appsLeft names, on the progress output, the project's Apps among
// services (all when none) that stop, start and restart leave as they
// are: an App's replicas follow its scale, not these verbs.
func (e *Engine) appsLeft(ctx context.Context, p *types.Project, services []string, verb string) error {
	apps, err := e.ProjectApps(ctx, p.Name)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if len(services) == 0 || slices.Contains(services, a.Metadata.Labels[LabelService]) {
			e.progress("App %s  Not %s (an App's replicas follow its scale; down deletes it)", a.Metadata.Name, verb)
		}
	}
	return nil
}

// Stop stops the services' containers, dependents first.
func (e *Engine) Stop(ctx context.Context, p *types.Project, services []string, timeout *time.Duration) error {
	m, err := e.selected(ctx, p, services)
	if err != nil {
		return err
	}
	if err := e.appsLeft(ctx, p, services, "stopped"); err != nil {
		return err
	}
	return graph.InDependencyOrder(ctx, p, func(ctx context.Context, name string, _ types.ServiceConfig) error {
		return e.each(ctx, m[name], func(ctx context.Context, c api.Container) error {
			if err := e.C.Stop(ctx, c.ID, timeout); err != nil {
				return fmt.Errorf("stop %s: %w", c.Name, err)
			}
			e.progress("Container %s  Stopped", c.Name)
			return nil
		})
	}, graph.InReverseOrder)
}

// Start starts the services' containers, dependencies first.
func (e *Engine) Start(ctx context.Context, p *types.Project, services []string) error {
	m, err := e.selected(ctx, p, services)
	if err != nil {
		return err
	}
	if err := e.appsLeft(ctx, p, services, "started"); err != nil {
		return err
	}
	return graph.InDependencyOrder(ctx, p, func(ctx context.Context, name string, _ types.ServiceConfig) error {
		return e.each(ctx, m[name], func(ctx context.Context, c api.Container) error {
			if err := e.C.Start(ctx, c.ID); err != nil {
				return fmt.Errorf("start %s: %w", c.Name, err)
			}
			e.progress("Container %s  Started", c.Name)
			return nil
		})
	})
}

// Restart restarts the services' containers.
func (e *Engine) Restart(ctx context.Context, p *types.Project, services []string, timeout *time.Duration) error {
	m, err := e.selected(ctx, p, services)
	if err != nil {
		return err
	}
	if err := e.appsLeft(ctx, p, services, "restarted"); err != nil {
		return err
	}
	for _, name := range sortedKeys(m) {
		if err := e.each(ctx, m[name], func(ctx context.Context, c api.Container) error {
			if err := e.C.Restart(ctx, c.ID, timeout); err != nil {
				return fmt.Errorf("restart %s: %w", c.Name, err)
			}
			e.progress("Container %s  Restarted", c.Name)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// LogLine is one line of a service's output.
type LogLine struct {
	Container string
	Service   string
	Entry     api.LogEntry
}

// Logs calls fn with the log lines of the services' containers: without
// follow all of them sorted by time, with follow as they come (fn is
// never called concurrently).
func (e *Engine) Logs(ctx context.Context, p *types.Project, services []string, opts client.LogsOptions, fn func(LogLine) error) error {
	m, err := e.selected(ctx, p, services)
	if err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		lines []LogLine
		wg    sync.WaitGroup
		errs  []error
	)
	for _, name := range sortedKeys(m) {
		for _, c := range m[name] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := e.C.Logs(ctx, c.ID, opts, func(en api.LogEntry) error {
					l := LogLine{Container: c.Name, Service: name, Entry: en}
					mu.Lock()
					defer mu.Unlock()
					if opts.Follow {
						return fn(l)
					}
					lines = append(lines, l)
					return nil
				})
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("logs of %s: %w", c.Name, err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Entry.Time.Before(lines[j].Entry.Time) })
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// ServiceContainer is replica index (from 1) of a service, for exec: the
// container numbered index, else (the numbers move as a recreate takes
// the lowest free one) the index-th by number.
func (e *Engine) ServiceContainer(ctx context.Context, p *types.Project, service string, index int) (api.Container, error) {
	m, err := e.selected(ctx, p, []string{service})
	if err != nil {
		return api.Container{}, err
	}
	ctrs := m[service]
	for _, c := range ctrs {
		if number(c) == index {
			return c, nil
		}
	}
	if index >= 1 && index <= len(ctrs) {
		return ctrs[index-1], nil
	}
	return api.Container{}, errdefs.NotFound("service %s has no container %d: is the project up?", service, index)
}

// removeVolumes removes the project's named volumes that are not
// external, and its anonymous volumes.
func (e *Engine) removeVolumes(ctx context.Context, p *types.Project) error {
	vols, err := e.C.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if _, anon := v.Labels[LabelAnonymous]; !anon || v.Labels[LabelProject] != p.Name {
			continue
		}
		if err := e.C.RemoveVolume(ctx, v.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove volume %s: %w", v.Name, err)
		}
		e.progress("Volume %s  Removed", v.Name)
	}
	for _, key := range sortedKeys(p.Volumes) {
		v := p.Volumes[key]
		if bool(v.External) {
			continue
		}
		if err := e.C.RemoveVolume(ctx, v.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove volume %s: %w", v.Name, err)
		}
		e.progress("Volume %s  Removed", v.Name)
	}
	return nil
}
