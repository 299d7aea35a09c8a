package container

import (
	"context"
	"errors"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/store"
)

func TestDecideRestore(t *testing.T) {
	rec := func(status, intent string, autoRemove bool) store.ContainerRecord {
		r := store.ContainerRecord{Intent: intent}
		r.State.Status = status
		r.Config.AutoRemove = autoRemove
		return r
	}
	var (
		gone      = observed{}
		created   = observed{known: true, status: runtime.StatusCreated, monitor: true}
		createdNM = observed{known: true, status: runtime.StatusCreated}
		running   = observed{known: true, status: runtime.StatusRunning, monitor: true}
		runningNM = observed{known: true, status: runtime.StatusRunning}
		paused    = observed{known: true, status: runtime.StatusPaused, monitor: true}
		exited    = observed{known: true, status: runtime.StatusStopped, exited: true}
		stoppedNX = observed{known: true, status: runtime.StatusStopped}
		leftover  = observed{known: true}
	)
	tests := []struct {
		name string
		rec  store.ContainerRecord
		obs  observed
		want restoreAction
	}{
		{"running, runs", rec(api.StatusRunning, "", false), running, actAdopt},
		{"running, paused", rec(api.StatusRunning, "", false), paused, actAdopt},
		{"running, exited meanwhile", rec(api.StatusRunning, "", false), exited, actRecordExit},
		{"running, gone", rec(api.StatusRunning, "", false), gone, actGone},
		{"running, stopped without exit file", rec(api.StatusRunning, "", false), stoppedNX, actGone},
		{"running, monitor dead", rec(api.StatusRunning, "", false), runningNM, actKillOrphan},
		{"stopping, runs: finish the stop", rec(api.StatusStopping, store.IntentStop, false), running, actAdopt},
		{"stopping, exited", rec(api.StatusStopping, store.IntentStop, false), exited, actRecordExit},
		{"stopping, monitor dead", rec(api.StatusStopping, store.IntentStop, false), runningNM, actKillOrphan},
		{"created, prepared", rec(api.StatusCreated, "", false), created, actKeepPrepared},
		{"created, prepared, monitor dead", rec(api.StatusCreated, "", false), createdNM, actUndoStart},
		{"created, start cut short after create", rec(api.StatusCreated, store.IntentStart, false), created, actUndoStart},
		{"created, start cut short, monitor dead", rec(api.StatusCreated, store.IntentStart, false), createdNM, actUndoStart},
		{"created, start cut short before create", rec(api.StatusCreated, store.IntentStart, false), gone, actUndoStart},
		{"created, start cut short, auto-remove", rec(api.StatusCreated, store.IntentStart, true), createdNM, actRemove},
		{"created, start cut short before create, auto-remove", rec(api.StatusCreated, store.IntentStart, true), gone, actRemove},
		{"created, runs: start not recorded", rec(api.StatusCreated, store.IntentStart, false), running, actMarkRunning},
		{"created, prepared, runs", rec(api.StatusCreated, "", true), running, actMarkRunning},
		{"created, runs, monitor dead", rec(api.StatusCreated, store.IntentStart, false), runningNM, actKillOrphan},
		{"created, ran and exited", rec(api.StatusCreated, store.IntentStart, true), exited, actRecordExit},
		{"created, never started", rec(api.StatusCreated, "", false), gone, actNone},
		{"created --rm, never started", rec(api.StatusCreated, "", true), gone, actNone},
		{"created, leftover runtime state", rec(api.StatusCreated, "", false), leftover, actUndoStart},
		{"restarting", rec(api.StatusRestarting, "", false), gone, actReschedule},
		{"restarting, restart cut short", rec(api.StatusRestarting, store.IntentStart, false), createdNM, actReschedule},
		{"restarting, runs: restart not recorded", rec(api.StatusRestarting, store.IntentStart, false), running, actMarkRunning},
		{"exited, start again cut short", rec(api.StatusExited, store.IntentStart, false), created, actUndoStart},
		{"exited, runs: start again not recorded", rec(api.StatusExited, store.IntentStart, false), running, actMarkRunning},
		{"exited, start again, monitor dead", rec(api.StatusExited, store.IntentStart, false), runningNM, actKillOrphan},
		{"exited, prepared runtime state without intent", rec(api.StatusExited, "", false), created, actCleanup},
		{"exited", rec(api.StatusExited, "", false), gone, actNone},
		{"exited, runtime state left", rec(api.StatusExited, "", false), exited, actCleanup},
		{"exited, auto-remove not done", rec(api.StatusExited, "", true), exited, actRemove},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideRestore(tc.rec, tc.obs); got != tc.want {
				t.Fatalf("decideRestore = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRestoreFinishesCutShortWork simulates a daemon killed in the middle
// of each lifecycle step (the record written before the step, the
// runtime as far as the step got) and checks the next daemon finishes or
// undoes each.
func TestRestoreFinishesCutShortWork(t *testing.T) {
	rt := newFakeRuntime()
	dir := t.TempDir()
	m := newTestManager(t, rt, dir)
	ctx := context.Background()
	mk := func(name string, start, autoRemove bool) api.Container {
		c, err := m.Create(ctx, api.ContainerCreateRequest{Name: name, Start: start, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, AutoRemove: autoRemove}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// write sets a container's record as a crash would have left it.
	write := func(c api.Container, status, intent string, deadline time.Time) {
		t.Helper()
		c.State.Status = status
		cur, err := m.cfg.Store.GetContainer(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.cfg.Store.PutContainerState(ctx, &store.ContainerRecord{Container: c, Intent: intent, StopDeadline: deadline, ManuallyStopped: intent == store.IntentStop, Version: cur.Version}); err != nil {
			t.Fatal(err)
		}
	}
	stopping := mk("stopping", true, false)
	running := mk("running-unrecorded", true, false)
	prepared := mk("prepared", false, false)
	if err := m.Prepare(ctx, prepared.ID); err != nil {
		t.Fatal(err)
	}
	undone := mk("undone", false, false)
	if err := m.Prepare(ctx, undone.ID); err != nil {
		t.Fatal(err)
	}
	rm := mk("rm", false, true)
	if err := m.Prepare(ctx, rm.ID); err != nil {
		t.Fatal(err)
	}
	m.Close()
	// A stop whose grace period ran out while no daemon ran (the process
	// ignored its stop signal).
	write(stopping, api.StatusStopping, store.IntentStop, time.Now().Add(-time.Second))
	// The process started, its start not recorded.
	write(running, api.StatusCreated, store.IntentStart, time.Time{})
	// Starts cut short after the runtime's create, their monitor dead.
	write(undone, api.StatusCreated, store.IntentStart, time.Time{})
	write(rm, api.StatusCreated, store.IntentStart, time.Time{})
	rt.mu.Lock()
	rt.ctrs[undone.ID].monitorDead = true
	rt.ctrs[rm.ID].monitorDead = true
	deletes := rt.deletes
	starts := rt.starts
	rt.mu.Unlock()

	m2 := newTestManager(t, rt, dir)
	waitFor(t, "the cut-short stop to end with SIGKILL", func() bool {
		s := status(t, m2, "stopping")
		return s.Status == api.StatusExited && s.ExitCode == 137
	})
	if s := status(t, m2, "running-unrecorded"); s.Status != api.StatusRunning || s.Pid != running.State.Pid {
		t.Fatalf("a running process recorded as created: %+v", s)
	}
	if s := status(t, m2, "undone"); s.Status != api.StatusCreated || s.Error == "" {
		t.Fatalf("undone start: %+v", s)
	}
	if _, err := m2.Get(ctx, "rm"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("auto-remove container with a cut-short start still there: %v", err)
	}
	rt.mu.Lock()
	_, undoneLeft := rt.ctrs[undone.ID]
	_, preparedLeft := rt.ctrs[prepared.ID]
	if rt.deletes < deletes+2 || undoneLeft || !preparedLeft {
		t.Errorf("runtime state after restore: %d deletes, undone left %v, prepared left %v", rt.deletes-deletes, undoneLeft, preparedLeft)
	}
	rt.mu.Unlock()
	att := m2.NetworkAttached()
	if !att[prepared.ID] || !att[running.ID] || att[undone.ID] {
		t.Fatalf("network attached after restore: %v (want prepared and running, not undone)", att)
	}
	// The prepared one only needs its process started; the undone one
	// starts from scratch.
	if err := m2.Start(ctx, "prepared"); err != nil {
		t.Fatal(err)
	}
	if err := m2.Start(ctx, "undone"); err != nil {
		t.Fatal(err)
	}
	if s := status(t, m2, "undone"); s.Status != api.StatusRunning {
		t.Fatalf("undone container did not start: %+v", s)
	}
	rt.mu.Lock()
	if rt.starts != starts+2 {
		t.Errorf("%d starts, want 2", rt.starts-starts)
	}
	rt.mu.Unlock()
	// The one found running is watched: its exit is recorded.
	rt.exit(running.ID, 3)
	waitFor(t, "exit of the adopted container", func() bool {
		s := status(t, m2, "running-unrecorded")
		return s.Status == api.StatusExited && s.ExitCode == 3
	})
}
