package controller

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/store"
)

// racingStore is a store in which another writer (the controller's status
// update) changes the App right after each of the first `races` reads.
type racingStore struct {
	*store.Store
	races atomic.Int32
}

func (s *racingStore) GetApp(ctx context.Context, name string) (api.App, error) {
	a, err := s.Store.GetApp(ctx, name)
	if err == nil && s.races.Add(-1) >= 0 {
		st := a.Status
		st.LatestCreatedRevision = name + "-00001"
		if _, err := s.Store.UpdateAppStatus(ctx, name, a.Metadata.ResourceVersion, st); err != nil {
			return api.App{}, err
		}
	}
	return a, err
}

// nopRouter takes route tables and drops them.
type nopRouter struct{}

func (nopRouter) Update(ingress.Table) error                     { return nil }
func (nopRouter) WaitIdle(context.Context, string) error         { return nil }
func (nopRouter) RevisionStats(string) (s ingress.RevisionStats) { return s }

var _ Router = nopRouter{}

func TestVerbsRetryAfterStatusWrites(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs := &racingStore{Store: st}
	c := New(Config{Store: rs, Router: nopRouter{}, Logger: slog.New(slog.DiscardHandler)})
	defer c.Close()
	in := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind, Metadata: api.ObjectMeta{Name: "shop"},
		Spec: api.AppSpec{Image: "hello", Env: []api.EnvVar{{Name: "V", Value: "1"}}}}
	if _, err := c.Apply(ctx, in); err != nil {
		t.Fatal(err)
	}

	rs.races.Store(3)
	in.Spec.Env[0].Value = "2"
	out, err := c.Apply(ctx, in)
	if err != nil {
		t.Fatalf("apply racing 3 status writes: %v", err)
	}
	if out.Metadata.Generation != 2 || out.Status.LatestCreatedRevision != "shop-00001" {
		t.Fatalf("apply: generation %d, status %+v; want 2 and the status written meanwhile", out.Metadata.Generation, out.Status)
	}

	rs.races.Store(3)
	hi := 7
	if out, err = c.Scale(ctx, "shop", nil, &hi); err != nil {
		t.Fatalf("scale racing 3 status writes: %v", err)
	}
	got, _ := st.GetApp(ctx, "shop")
	if got.Metadata.Generation != 3 || *got.Spec.Scale.Max != 7 || got.Spec.Env[0].Value != "2" || got.Metadata.ResourceVersion != out.Metadata.ResourceVersion {
		t.Fatalf("after scale: generation %d, max %d, V=%s at %s (scale answered %s)", got.Metadata.Generation, *got.Spec.Scale.Max, got.Spec.Env[0].Value, got.Metadata.ResourceVersion, out.Metadata.ResourceVersion)
	}

	// A client's own version is not retried: the race is the client's.
	rs.races.Store(1)
	in = got
	in.Spec.Env[0].Value = "3"
	if _, err := c.Apply(ctx, in); err == nil {
		t.Fatal("apply at a version overtaken by a status write succeeded")
	}
	if got, _ := st.GetApp(ctx, "shop"); got.Spec.Env[0].Value != "2" {
		t.Fatalf("refused apply wrote V=%s", got.Spec.Env[0].Value)
	}
}
