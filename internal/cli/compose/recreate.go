package compose

import (
	"context"
	"fmt"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
)

// replicaPlan is what converge does with a service's containers.
type replicaPlan struct {
	keep   []api.Container // the ones to keep, lowest numbers first (at most the replicas wanted)
	remove []api.Container // beyond the replicas wanted, or unnumbered
	create int             // how many new replicas to add
}

// planReplicas keeps the want lowest-numbered containers of have and
// removes the rest; the missing ones are created.
func planReplicas(have []api.Container, want int) replicaPlan {
	var pl replicaPlan
	sorted := append([]api.Container(nil), have...)
	sort.SliceStable(sorted, func(i, j int) bool { return number(sorted[i]) < number(sorted[j]) })
	for _, c := range sorted {
		if number(c) < 1 || len(pl.keep) >= want {
			pl.remove = append(pl.remove, c)
			continue
		}
		pl.keep = append(pl.keep, c)
	}
	pl.create = want - len(pl.keep)
	return pl
}

// freeNumber is the lowest replica number (from 1) not in used; it marks
// it used.
func freeNumber(used map[int]bool) int {
	n := 1
	for used[n] {
		n++
	}
	used[n] = true
	return n
}

// rolling reports whether a changed replica of s can be replaced by
// starting the new one next to the old one: not when it publishes a
// fixed host port, has a fixed container name or a fixed address
// (ipv4_address), which two cannot share, nor when it has anonymous
// volumes, which follow the replica's number.
func rolling(s types.ServiceConfig) bool {
	if s.ContainerName != "" || hasAnonymousVolumes(s) {
		return false
	}
	for _, n := range s.Networks {
		if n != nil && n.Ipv4Address != "" {
			return false
		}
	}
	for _, pc := range s.Ports {
		if pc.Published != "" {
			return false
		}
	}
	return true
}

// converge makes the containers of s match the model: replicas() of them
// exist with the current configuration and image and are started; the
// rest are removed. A changed replica is replaced one at a time: the new
// container, under the lowest free replica number, runs (and passes the
// healthcheck, if the service has one) before the old one stops; if it
// does not, it is removed and the old one keeps running. Services that
// publish fixed host ports stop the old replica first.
func (e *Engine) converge(ctx context.Context, p *types.Project, s types.ServiceConfig, have []api.Container, force bool) error {
	img, err := e.C.Image(ctx, ImageName(p, s))
	if err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	hash := serviceHash(p, s)
	pl := planReplicas(have, replicas(s))
	for _, c := range pl.remove {
		if err := e.stopRemove(ctx, c); err != nil {
			return err
		}
	}
	used := map[int]bool{}
	for _, c := range pl.keep {
		used[number(c)] = true
	}
	for _, c := range pl.keep {
		if force || c.Config.Labels[LabelConfigHash] != hash || c.ImageID != img.ID {
			if err := e.recreate(ctx, p, s, c, used); err != nil {
				return err
			}
			e.noteChanged(s.Name)
			continue
		}
		if c.State.Status == api.StatusRunning || c.State.Status == api.StatusRestarting {
			e.progress("Container %s  Running", c.Name)
			continue
		}
		if err := e.C.Start(ctx, c.ID); err != nil {
			return fmt.Errorf("start %s: %w", c.Name, err)
		}
		e.progress("Container %s  Started", c.Name)
	}
	for i := 0; i < pl.create; i++ {
		if _, err := e.createReplica(ctx, p, s, freeNumber(used), "Started"); err != nil {
			return err
		}
	}
	return nil
}

// createReplica creates and starts replica n of s, printing verb.
func (e *Engine) createReplica(ctx context.Context, p *types.Project, s types.ServiceConfig, n int, verb string) (api.Container, error) {
	req, err := CreateRequest(p, s, n)
	if err != nil {
		return api.Container{}, err
	}
	archive, err := configArchive(p, s)
	if err != nil {
		return api.Container{}, err
	}
	req.Start = archive == nil // else started once its configs are in
	if req.Config.SecretMounts, err = e.SecretMounts(ctx, p, s); err != nil {
		return api.Container{}, err
	}
	if err := e.EnsureAnonymousVolumes(ctx, p, s, req); err != nil {
		return api.Container{}, err
	}
	c, err := e.C.CreateContainer(ctx, req)
	if err != nil {
		return api.Container{}, fmt.Errorf("service %s: %w", s.Name, err)
	}
	if archive != nil {
		if err := e.startWithConfigs(ctx, p, s, c.ID); err != nil {
			if rerr := e.C.Remove(ctx, c.ID, true); rerr != nil {
				err = fmt.Errorf("%w (and removing the container: %v)", err, rerr)
			}
			return api.Container{}, err
		}
	}
	if c.Name == "" {
		c.Name = req.Name
	}
	e.progress("Container %s  %s", req.Name, verb)
	return c, nil
}

// recreate replaces old, a changed replica of s (see converge).
func (e *Engine) recreate(ctx context.Context, p *types.Project, s types.ServiceConfig, old api.Container, used map[int]bool) error {
	if !rolling(s) {
		if err := e.stopRemove(ctx, old); err != nil {
			return err
		}
		_, err := e.createReplica(ctx, p, s, number(old), "Recreated")
		return err
	}
	n := freeNumber(used)
	c, err := e.createReplica(ctx, p, s, n, "Created")
	if err != nil {
		delete(used, n)
		return err
	}
	if err := e.ready(ctx, p, s, c); err != nil {
		if rerr := e.C.Remove(ctx, c.ID, true); rerr != nil {
			err = fmt.Errorf("%w (and removing it: %v)", err, rerr)
		}
		delete(used, n)
		return fmt.Errorf("recreate service %s: the new container was removed and %s keeps running: %w", s.Name, old.Name, err)
	}
	if err := e.stopRemove(ctx, old); err != nil {
		return err
	}
	delete(used, number(old))
	e.progress("Container %s  Recreated as %s", old.Name, c.Name)
	return nil
}

// ready returns once the new container c of s runs (or completed with
// code 0) and, if s has a healthcheck, passes it.
func (e *Engine) ready(ctx context.Context, p *types.Project, s types.ServiceConfig, c api.Container) error {
	st, err := e.C.Container(ctx, c.ID)
	if err != nil {
		return err
	}
	if st.State.Status == api.StatusExited && st.State.ExitCode != 0 {
		return fmt.Errorf("service %s is not running: container %s exited with code %d", s.Name, c.Name, st.State.ExitCode)
	}
	h, err := e.healthcheck(ctx, p, s)
	if err != nil {
		return err
	}
	if healthTest(h) == nil {
		return nil
	}
	if err := e.containerHealthy(ctx, s.Name, c); err != nil {
		return err
	}
	e.progress("Container %s  Healthy", c.Name)
	return nil
}
