package compose

import (
	"context"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
)

// noteChanged records that the current Up recreated (or, for an App,
// updated) service.
func (e *Engine) noteChanged(service string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed != nil {
		e.changed[service] = true
	}
}

// restartCause is the dependency of s, named with restart: true, that
// the current Up changed ("" when none); a service recreated itself
// needs no restart.
func (e *Engine) restartCause(s types.ServiceConfig) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed[s.Name] {
		return ""
	}
	for _, dep := range sortedKeys(s.DependsOn) {
		if s.DependsOn[dep].Restart && e.changed[dep] {
			return dep
		}
	}
	return ""
}

// restartForDependencies restarts the running containers of s when a
// dependency it names with depends_on restart: true was recreated by
// this Up and s itself was not, as docker compose does.
func (e *Engine) restartForDependencies(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	dep := e.restartCause(s)
	if dep == "" {
		return nil
	}
	ctrs, err := e.serviceContainers(ctx, p.Name, s.Name)
	if err != nil {
		return err
	}
	for _, c := range ctrs {
		if c.State.Status != api.StatusRunning && c.State.Status != api.StatusRestarting {
			continue
		}
		if err := e.C.Restart(ctx, c.ID, nil); err != nil {
			return fmt.Errorf("restart %s after its dependency %s was recreated: %w", c.Name, dep, err)
		}
		e.progress("Container %s  Restarted (dependency %s recreated)", c.Name, dep)
	}
	return nil
}
