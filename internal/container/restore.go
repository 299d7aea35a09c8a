package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// Restore loads the recorded containers and reconciles them with what the
// runtime reports: running ones are adopted (watched again, never
// restarted), ones that exited while no daemon ran get their exit
// recorded and their restart policy applied, pending restarts are
// rescheduled, and directories of containers that were never recorded
// (a crash during create) are removed.
func (m *Manager) Restore(ctx context.Context) error {
	recs, err := m.cfg.Store.ListContainers(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var entries []*entry
	m.mu.Lock()
	for _, r := range recs {
		e := &entry{rec: *r, exited: closedChan(), removed: make(chan struct{}), backoff: m.minBackoff}
		m.byID[r.ID] = e
		m.byName[r.Name] = e
		known[r.ID] = true
		entries = append(entries, e)
	}
	m.mu.Unlock()
	m.removeStrays(known)

	for _, e := range entries {
		id := e.rec.ID
		switch e.rec.State.Status {
		case api.StatusRunning, api.StatusStopping:
			e.mu.Lock()
			e.run = 1
			e.exited = make(chan struct{})
			e.mu.Unlock()
			st, exited, err := m.cfg.Runtime.Exited(ctx, id)
			if err == nil && exited {
				m.exitedRun(e, 1, st)
				continue
			}
			s, err := m.cfg.Runtime.State(ctx, id)
			if err == nil && (s.Status == runtime.StatusRunning || s.Status == runtime.StatusPaused) {
				m.log.Info("adopted running container", "id", id[:12], "name", e.rec.Name, "pid", s.Pid)
				m.watch(e, 1)
				continue
			}
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				m.log.Warn("query container state", "id", id[:12], "err", err)
			}
			e.mu.Lock()
			e.rec.State.Error = "the container was gone when the daemon started (the host restarted, or its runtime state was removed)"
			e.mu.Unlock()
			m.exitedRun(e, 1, runtime.ExitStatus{Code: 255, At: time.Now()})
		case api.StatusCreated:
			if st, err := m.cfg.Runtime.State(ctx, id); err == nil && st.Status == runtime.StatusCreated {
				e.mu.Lock()
				e.prepared = true
				e.rec.State.Pid = st.Pid
				e.mu.Unlock()
			}
		case api.StatusRestarting:
			e.mu.Lock()
			m.scheduleRestartLocked(e, minBackoff)
			e.mu.Unlock()
		}
	}
	return nil
}

// removeStrays deletes container directories the store does not know.
func (m *Manager) removeStrays(known map[string]bool) {
	ents, err := os.ReadDir(m.cfg.Dir)
	if err != nil {
		return
	}
	for _, d := range ents {
		if !d.IsDir() || known[d.Name()] {
			continue
		}
		dir := filepath.Join(m.cfg.Dir, d.Name())
		m.cfg.Runtime.Delete(context.Background(), d.Name())
		if err := m.cfg.Mounter.Unmount(filepath.Join(dir, "rootfs")); err != nil {
			m.log.Warn("unmount stray container rootfs", "dir", dir, "err", err)
			continue
		}
		os.RemoveAll(dir)
		m.log.Info("removed unrecorded container directory", "dir", dir)
	}
}
