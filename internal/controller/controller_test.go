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

// lockCheckingStore fails the test when a write reaches the store while
// the controller's lock is held (by the writer or anyone else).
type lockCheckingStore struct {
	*store.Store
	t *testing.T
	c *Controller
}

func (s *lockCheckingStore) check(what string) {
	if s.c.mu.TryLock() {
		s.c.mu.Unlock()
		return
	}
	s.t.Errorf("%s written to the store under the controller's lock", what)
}

func (s *lockCheckingStore) PutRevision(ctx context.Context, r api.Revision) error {
	s.check("revision " + r.Name)
	return s.Store.PutRevision(ctx, r)
}

func (s *lockCheckingStore) AddEvent(ctx context.Context, e api.Event) error {
	s.check("event " + e.Reason)
	return s.Store.AddEvent(ctx, e)
}

func (s *lockCheckingStore) UpdateAppStatus(ctx context.Context, name, rv string, st api.AppStatus) (api.App, error) {
	s.check("status")
	return s.Store.UpdateAppStatus(ctx, name, rv, st)
}

// heldContainers is a runtime with no containers whose creations wait
// until released.
type heldContainers struct {
	Containers
	release chan struct{}
	reqs    chan api.ContainerCreateRequest
}

func (h *heldContainers) List(context.Context, bool) []api.Container { return nil }
func (h *heldContainers) Create(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error) {
	h.reqs <- req
	<-h.release
	return api.Container{}, context.Canceled
}

type fixedImages struct{}

func (fixedImages) ResolveID(ctx context.Context, ref string) (string, string, error) {
	return "sha256:feed", "sha256:feed", nil
}

// A reconcile of a new App with a fake runtime: the first revision is
// stored with its image pinned, a replica is asked for, the status says
// the rollout is under way, and nothing is written under the lock.
func TestReconcileNewApp(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &heldContainers{release: make(chan struct{}), reqs: make(chan api.ContainerCreateRequest, 10)}
	ls := &lockCheckingStore{Store: st, t: t}
	c := New(Config{Store: ls, Containers: cs, Images: fixedImages{}, Router: nopRouter{}, Logger: slog.New(slog.DiscardHandler)})
	ls.c = c
	defer c.Close()
	defer close(cs.release)
	if _, err := st.CreateApp(ctx, shopApp()); err != nil {
		t.Fatal(err)
	}
	if err := c.reconcile(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	c.recordEvents()
	select {
	case req := <-cs.reqs:
		if req.Config.Image != "sha256:feed" || req.Config.Labels[LabelRevision] != "shop-00001" || !req.Start {
			t.Fatalf("replica asked for: %+v", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no replica created")
	}
	revs, _ := st.ListRevisions(ctx, "shop")
	if len(revs) != 1 || revs[0].Status.ImageDigest != "sha256:feed" {
		t.Fatalf("stored revisions: %+v", revs)
	}
	a, _ := st.GetApp(ctx, "shop")
	if a.Status.LatestCreatedRevision != "shop-00001" || a.Status.Replicas.Desired != 1 {
		t.Fatalf("status: %+v", a.Status)
	}
	evs, _ := st.ListEvents(ctx, store.EventFilter{})
	if len(evs) != 1 || evs[0].Reason != "RevisionCreated" {
		t.Fatalf("events: %+v", evs)
	}
}
