package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/store"
)

// observed is what the runtime reports of a recorded container when the
// daemon starts.
type observed struct {
	// known: the runtime has state for the container.
	known bool
	// status is the runtime's status (runtime.Status*), "" if unknown.
	status string
	pid    int
	// exited: the monitor recorded the process's exit.
	exited bool
	// monitor: the container's monitor (conmon) runs.
	monitor bool
}

// restoreAction is what Restore does with one recorded container.
type restoreAction int

const (
	// actNone leaves the record as it is.
	actNone restoreAction = iota
	// actAdopt watches a running process again (and finishes a stop
	// that was under way).
	actAdopt
	// actMarkRunning records the start of a process that runs though its
	// record still says created, then adopts it.
	actMarkRunning
	// actRecordExit records an exit that happened while no daemon ran;
	// the restart policy and auto-removal follow.
	actRecordExit
	// actGone records that a container recorded as running is gone.
	actGone
	// actKillOrphan kills a process whose monitor is gone (nothing would
	// record its exit) and records the exit.
	actKillOrphan
	// actKeepPrepared keeps a prepared container ready to start: runtime
	// state, monitor and network stay.
	actKeepPrepared
	// actUndoStart deletes what a start cut short made (runtime state,
	// network); the container is created again, ready for a new start.
	actUndoStart
	// actRemove removes an auto-remove container whose run was cut short
	// or ended: nobody is left to start or remove it.
	actRemove
	// actCleanup deletes the runtime state an ended run left behind.
	actCleanup
	// actReschedule schedules a pending restart.
	actReschedule
)

var restoreActionNames = [...]string{"none", "adopt", "mark-running", "record-exit", "gone", "kill-orphan",
	"keep-prepared", "undo-start", "remove", "cleanup", "reschedule"}

func (a restoreAction) String() string { return restoreActionNames[a] }

// decideRestore says what to do with a recorded container given what the
// runtime reports: the record is a log of intents written before each
// step, and the runtime's state and the monitor's liveness say how far
// the step got.
func decideRestore(rec store.ContainerRecord, o observed) restoreAction {
	runs := o.status == runtime.StatusRunning || o.status == runtime.StatusPaused
	status := rec.State.Status
	if status == api.StatusRunning || status == api.StatusStopping {
		switch {
		case o.exited:
			return actRecordExit
		case runs && o.monitor:
			return actAdopt
		case runs, o.status == runtime.StatusCreated:
			return actKillOrphan
		}
		return actGone
	}
	// Not recorded as running: a start may have been under way (a created
	// container, or an exited or restarting one started again).
	if status == api.StatusCreated || rec.Intent == store.IntentStart {
		switch {
		case o.exited:
			return actRecordExit
		case runs && o.monitor:
			return actMarkRunning
		case runs:
			return actKillOrphan
		case status == api.StatusCreated && o.status == runtime.StatusCreated && o.monitor && rec.Intent == "":
			return actKeepPrepared
		case rec.Intent == store.IntentStart && rec.Config.AutoRemove:
			return actRemove
		case status == api.StatusRestarting:
			return actReschedule // the restart cleans up what was made
		case o.known, rec.Intent == store.IntentStart:
			return actUndoStart
		}
		return actNone
	}
	switch status {
	case api.StatusRestarting:
		return actReschedule
	case api.StatusExited:
		if rec.Config.AutoRemove {
			return actRemove
		}
		if o.known {
			return actCleanup
		}
	}
	return actNone
}

// Restore loads the recorded containers and reconciles each with what
// the runtime reports (see decideRestore): running ones are adopted
// (watched again, never restarted) and a stop under way is finished at
// its deadline; exits that happened while no daemon ran are recorded and
// their restart policy applied; a start cut short is undone (or the
// container removed, if auto-remove) and one that got as far as running
// is recorded as running; prepared containers stay prepared; pending
// restarts are rescheduled; directories of containers that were never
// recorded (a crash during create) are removed.
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
	m.collectSpares(ctx)

	for _, e := range entries {
		o := m.observe(ctx, e.rec.ID)
		act := decideRestore(e.rec, o)
		if act != actNone {
			m.log.Debug("restore container", "id", e.rec.ID[:12], "status", e.rec.State.Status, "intent", e.rec.Intent, "action", act)
		}
		m.restoreOne(ctx, e, act, o)
	}
	return nil
}

// observe asks the runtime about a recorded container.
func (m *Manager) observe(ctx context.Context, id string) observed {
	var o observed
	_, exited, err := m.cfg.Runtime.Exited(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return o
	}
	o.known, o.exited = true, err == nil && exited
	s, err := m.cfg.Runtime.State(ctx, id)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Warn("query container state", "id", id[:12], "err", err)
		}
		return o
	}
	o.status, o.pid, o.monitor = s.Status, s.Pid, s.Monitor
	return o
}

// restoreOne carries out act for e.
func (m *Manager) restoreOne(ctx context.Context, e *entry, act restoreAction, o observed) {
	id := e.rec.ID
	switch act {
	case actAdopt, actMarkRunning:
		e.mu.Lock()
		if act == actMarkRunning {
			e.rec.State = api.ContainerState{Status: api.StatusRunning, Pid: o.pid, StartedAt: time.Now().UTC(), RestartCount: e.rec.State.RestartCount}
			e.rec.State.Health = initialHealth(e.rec.Config.Healthcheck)
			e.rec.Intent = ""
			if err := m.persist(ctx, e); err != nil {
				m.log.Error("record container start", "id", id[:12], "err", err)
			}
			m.log.Warn("the daemon stopped before recording a start; the container runs", "id", id[:12], "name", e.rec.Name)
		}
		e.run = 1
		e.exited = make(chan struct{})
		stopping := e.rec.State.Status == api.StatusStopping
		deadline := e.rec.StopDeadline
		e.mu.Unlock()
		m.log.Info("adopted running container", "id", id[:12], "name", e.rec.Name, "pid", o.pid)
		m.watch(e, 1)
		if stopping {
			m.log.Info("finishing a stop that was under way", "id", id[:12], "kill at", deadline)
			m.killAt(e, 1, deadline)
		}
	case actRecordExit, actGone, actKillOrphan:
		m.restoreEnded(ctx, e, act)
	case actKeepPrepared:
		e.mu.Lock()
		e.prepared = true
		e.rec.State.Pid = o.pid
		e.mu.Unlock()
	case actUndoStart:
		m.cfg.Runtime.Delete(ctx, id)
		e.mu.Lock()
		e.rec.State.Pid = 0
		e.rec.State.Error = "the daemon stopped while starting the container: nothing ran; start it again"
		e.rec.Intent = ""
		e.rec.NetworkSettings = nil // the network's restore detaches it
		m.persist(ctx, e)
		e.mu.Unlock()
		m.log.Warn("undid a start cut short by the daemon's stop", "id", id[:12], "name", e.rec.Name)
	case actRemove:
		m.log.Warn("removing an auto-remove container whose run was cut short by the daemon's stop", "id", id[:12], "name", e.rec.Name)
		if err := m.removeLocked(ctx, e); err != nil {
			m.log.Error("remove container", "id", id[:12], "err", err)
		}
	case actCleanup:
		m.cfg.Runtime.Delete(ctx, id)
	case actReschedule:
		e.mu.Lock()
		m.scheduleRestartLocked(e, minBackoff)
		e.mu.Unlock()
	}
}

// restoreEnded records the end of a run that ended, or has to be ended,
// while no daemon watched it.
func (m *Manager) restoreEnded(ctx context.Context, e *entry, act restoreAction) {
	id := e.rec.ID
	e.mu.Lock()
	e.run = 1
	e.exited = make(chan struct{})
	// exitedRun records exits of running containers only.
	if s := e.rec.State.Status; s != api.StatusRunning && s != api.StatusStopping {
		e.rec.State.Status = api.StatusRunning
	}
	e.mu.Unlock()
	var st runtime.ExitStatus
	switch act {
	case actRecordExit:
		var err error
		if st, _, err = m.cfg.Runtime.Exited(ctx, id); err != nil {
			st = runtime.ExitStatus{Code: 255, At: time.Now()}
		}
	case actKillOrphan:
		m.log.Warn("the container's monitor is gone: killing the container, whose exit nothing would record", "id", id[:12], "name", e.rec.Name)
		if err := m.cfg.Runtime.Delete(ctx, id); err != nil {
			m.log.Warn("delete container", "id", id[:12], "err", err)
		}
		e.mu.Lock()
		e.rec.State.Error = "the container's monitor (conmon) was gone when the daemon started: the container was killed"
		e.mu.Unlock()
		st = runtime.ExitStatus{Code: 137, At: time.Now()}
	default:
		e.mu.Lock()
		e.rec.State.Error = "the container was gone when the daemon started (the host restarted, or its runtime state was removed)"
		e.mu.Unlock()
		st = runtime.ExitStatus{Code: 255, At: time.Now()}
	}
	m.exitedRun(e, 1, st)
}

// killAt sends SIGKILL to run of e at deadline unless it has exited by
// then: the end of a stop's grace period.
func (m *Manager) killAt(e *entry, run int, deadline time.Time) {
	e.mu.Lock()
	exited := e.exited
	e.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-exited:
			return
		case <-m.bg.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		current := e.run == run && !e.gone && e.rec.State.Status == api.StatusStopping
		e.mu.Unlock()
		if !current {
			return
		}
		m.log.Info("stop grace period over: sending SIGKILL", "id", e.rec.ID[:12])
		if err := m.cfg.Runtime.Kill(m.bg, e.rec.ID, syscall.SIGKILL, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Warn("send SIGKILL", "id", e.rec.ID[:12], "err", err)
		}
	}()
}

// NetworkAttached returns the containers whose network attachment must
// outlive a daemon restart: those that run and prepared ones waiting to
// start. (A container waiting for its restart has none: each run attaches
// anew.)
func (m *Manager) NetworkAttached() map[string]bool {
	out := map[string]bool{}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for id, e := range m.byID {
		e.mu.Lock()
		switch e.rec.State.Status {
		case api.StatusRunning, api.StatusStopping:
			out[id] = true
		case api.StatusCreated:
			out[id] = e.prepared
		}
		e.mu.Unlock()
	}
	return out
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
		if err := clearDir(dir); err != nil {
			m.log.Warn("clear stray container directory", "dir", dir, "err", err)
			continue
		}
		os.RemoveAll(dir)
		m.log.Info("removed unrecorded container directory", "dir", dir)
	}
}
