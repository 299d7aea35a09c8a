package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestSources(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	src := api.Source{Name: "shop", Created: time.Unix(100, 0).UTC(), Spec: api.SourceSpec{Git: "file:///r", Branch: "main"}}
	if err := s.CreateSource(ctx, src); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSource(ctx, src); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("a second source of the same name: %v", err)
	}
	if err := s.UpdateSourceStatus(ctx, "shop", api.SourceStatus{Commit: "abc", Syncing: "def"}); err != nil {
		t.Fatal(err)
	}
	src.Spec.Suspend = true
	if err := s.UpdateSourceSpec(ctx, "shop", src.Spec); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < sourceHistoryMax+5; i++ {
		if err := s.AddSourceHistory(ctx, "shop", api.SourceHistoryEntry{Commit: string(rune('a' + i%26)), Result: api.SourceResultApplied}); err != nil {
			t.Fatal(err)
		}
	}
	// What a restarted daemon reads.
	s.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetSource(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Syncing != "def" || !got.Spec.Suspend || got.Spec.Branch != "main" || !got.Created.Equal(src.Created) {
		t.Fatalf("stored source: %+v", got)
	}
	h, err := s.SourceHistory(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != sourceHistoryMax {
		t.Fatalf("%d history entries kept, want %d", len(h), sourceHistoryMax)
	}
	if err := s.DeleteSource(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSource(ctx, "shop"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted source: %v", err)
	}
	if _, err := s.SourceHistory(ctx, "shop"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("history of a deleted source: %v", err)
	}
	var n int
	s.db.QueryRow(`SELECT COUNT(*) FROM git_source_history`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d history rows outlived their source", n)
	}
	if err := s.AddSourceHistory(ctx, "shop", api.SourceHistoryEntry{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("history of a missing source: %v", err)
	}
}
