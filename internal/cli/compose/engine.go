package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

// Engine runs projects through a skiff daemon.
type Engine struct {
	C *client.Client
	// Progress receives one line per step ("Container web-1  Started").
	Progress io.Writer

	mu     sync.Mutex
	health map[string]*healthWait // by service, for the current Up
	apps   map[string]bool        // the services run as Apps, for the current Up
	// changed are the services the current Up recreated or updated.
	changed map[string]bool
	// copied are the project secrets written to the store by this
	// Engine, with their versions.
	copied map[string]int64
}

func (e *Engine) progress(format string, args ...any) {
	if e.Progress != nil {
		e.mu.Lock()
		fmt.Fprintf(e.Progress, " ✔ "+format+"\n", args...)
		e.mu.Unlock()
	}
}

// Containers lists the project's containers (oneoff ones with oneoff),
// by service then number.
func (e *Engine) Containers(ctx context.Context, project string, oneoff bool) ([]api.Container, error) {
	all, err := e.C.Containers(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []api.Container
	for _, c := range all {
		l := c.Config.Labels
		if l[LabelProject] != project || (l[LabelOneoff] == "True") != oneoff {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Config.Labels, out[j].Config.Labels
		if a[LabelService] != b[LabelService] {
			return a[LabelService] < b[LabelService]
		}
		na, _ := strconv.Atoi(a[LabelNumber])
		nb, _ := strconv.Atoi(b[LabelNumber])
		return na < nb
	})
	return out, nil
}

// byService groups containers by service name.
func byService(cs []api.Container) map[string][]api.Container {
	m := map[string][]api.Container{}
	for _, c := range cs {
		s := c.Config.Labels[LabelService]
		m[s] = append(m[s], c)
	}
	return m
}

// ensureNetworks creates the project networks the services use that are
// missing; an external network must exist.
func (e *Engine) ensureNetworks(ctx context.Context, p *types.Project) error {
	used := map[string]bool{}
	for _, s := range p.Services {
		if s.NetworkMode == "" {
			for _, n := range serviceNetworks(p, s) {
				used[n] = true
			}
		}
	}
	// The external networks first: a missing one fails up before
	// anything is made.
	keys := sortedKeys(used)
	sort.SliceStable(keys, func(i, j int) bool { return bool(p.Networks[keys[i]].External) && !bool(p.Networks[keys[j]].External) })
	for _, key := range keys {
		def := p.Networks[key]
		name := networkName(p, key)
		_, err := e.C.Network(ctx, name)
		if err == nil {
			continue
		}
		if !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		if bool(def.External) {
			return errdefs.NotFound("network %s is external but does not exist: create it with `skiff network create %s`", name, name)
		}
		l := map[string]string{LabelProject: p.Name, LabelNetwork: key}
		for k, v := range def.Labels {
			l[k] = v
		}
		if _, err := e.C.CreateNetwork(ctx, api.NetworkCreateRequest{Name: name, Subnet: networkSubnet(p, key), Internal: def.Internal, Labels: l}); err != nil {
			return fmt.Errorf("create network %s: %w", name, err)
		}
		e.progress("Network %s  Created", name)
	}
	return nil
}

// stopRemove stops (with the container's grace period) and removes c.
func (e *Engine) stopRemove(ctx context.Context, c api.Container) error {
	if c.State.Status == api.StatusRunning || c.State.Status == api.StatusRestarting {
		if err := e.C.Stop(ctx, c.ID, nil); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("stop %s: %w", c.Name, err)
		}
		e.progress("Container %s  Stopped", c.Name)
	}
	if err := e.C.Remove(ctx, c.ID, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	e.progress("Container %s  Removed", c.Name)
	return nil
}

// number is a container's replica number (0 when unlabelled).
func number(c api.Container) int {
	n, _ := strconv.Atoi(c.Config.Labels[LabelNumber])
	return n
}

// waitUntil polls cond every step until it returns true or an error, or
// ctx ends.
func waitUntil(ctx context.Context, step time.Duration, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
}

// EnsureAnonymousVolumes creates the anonymous volumes req (a container
// of s) mounts that do not exist yet, labelled as the project's and as
// anonymous, so down -v finds them.
func (e *Engine) EnsureAnonymousVolumes(ctx context.Context, p *types.Project, s types.ServiceConfig, req api.ContainerCreateRequest) error {
	for _, m := range anonymousMounts(req) {
		if _, err := e.C.Volume(ctx, m.Source); err == nil {
			continue
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		l := map[string]string{LabelProject: p.Name, LabelService: s.Name, LabelAnonymous: ""}
		if _, err := e.C.CreateVolume(ctx, api.VolumeCreateRequest{Name: m.Source, Labels: l}); err != nil {
			return fmt.Errorf("create the anonymous volume of %s for %s: %w", req.Name, m.Target, err)
		}
	}
	return nil
}

// RemoveAnonymousVolumes removes the anonymous volumes of req, a one-off
// container removed on exit (compose run --rm), once the container is
// gone: within a few seconds, or they are left to down -v.
func (e *Engine) RemoveAnonymousVolumes(ctx context.Context, req api.ContainerCreateRequest) {
	for _, m := range anonymousMounts(req) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		waitUntil(wctx, 50*time.Millisecond, func() (bool, error) {
			err := e.C.RemoveVolume(wctx, m.Source)
			return err == nil || errors.Is(err, errdefs.ErrNotFound), nil
		})
		cancel()
	}
}

// ensureVolumes creates the project's named volumes with docker compose's
// labels; an external volume must exist.
func (e *Engine) ensureVolumes(ctx context.Context, p *types.Project) error {
	for _, key := range sortedKeys(p.Volumes) {
		v := p.Volumes[key]
		if bool(v.External) {
			if _, err := e.C.Volume(ctx, v.Name); err != nil {
				return fmt.Errorf("volume %s is external: %w", v.Name, err)
			}
			continue
		}
		if _, err := e.C.Volume(ctx, v.Name); err == nil {
			continue
		}
		l := map[string]string{LabelProject: p.Name, LabelVolume: key}
		for k, val := range v.Labels {
			l[k] = val
		}
		if _, err := e.C.CreateVolume(ctx, api.VolumeCreateRequest{Name: v.Name, Labels: l}); err != nil {
			return fmt.Errorf("create volume %s: %w", v.Name, err)
		}
		e.progress("Volume %s  Created", v.Name)
	}
	return nil
}
