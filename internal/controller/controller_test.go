package controller

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/store"
)

// slowEventStore is a store whose event writes wait until released.
type slowEventStore struct {
	*store.Store
	release chan struct{}
	calls   atomic.Int32
}

func (s *slowEventStore) AddEvent(ctx context.Context, e api.Event) error {
	s.calls.Add(1)
	<-s.release
	return s.Store.AddEvent(ctx, e)
}

// within fails t unless f returns within 5s.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s waited for the store's event write", what)
	}
}

// The ingress calls Activate on a request's path: it must not wait for
// the store, and recording the event must not hold the controller's lock.
func TestActivateWritesNoEventOnTheRequestPath(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ss := &slowEventStore{Store: st, release: make(chan struct{})}
	c := New(Config{Store: ss, Logger: slog.New(slog.DiscardHandler)})
	defer c.Close()
	released := false
	defer func() {
		if !released {
			close(ss.release)
		}
	}()
	c.mu.Lock()
	c.stateLocked("shop").exists = true
	c.mu.Unlock()

	within(t, "Activate", func() { c.Activate(ctx, "shop", "shop-00001") })
	if n := ss.calls.Load(); n != 0 {
		t.Fatalf("Activate wrote %d events to the store itself", n)
	}
	c.mu.Lock()
	want := c.apps["shop"].want["shop-00001"]
	c.mu.Unlock()
	if want != 1 {
		t.Fatalf("Activate asked for %d replicas, want 1", want)
	}

	// The worker records it, holding no lock that readers need.
	go c.recordEvents()
	for deadline := time.Now().Add(5 * time.Second); ss.calls.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the queued event was never written")
		}
	}
	within(t, "Replicas", func() { c.Replicas(ctx, "") })
	within(t, "a second Activate", func() { c.Activate(ctx, "shop", "shop-00001") })
	close(ss.release)
	released = true
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		evs, err := st.ListEvents(ctx, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].Reason == "Activated" && evs[0].Name == "shop" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %+v, want one Activated event for shop", evs)
		}
	}
}
