package store

import (
	"context"
	"errors"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestIDRanges(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	get := func(owner string, busy map[int]bool) int {
		t.Helper()
		n, err := s.IDRange(ctx, owner, 4, busy)
		if err != nil {
			t.Fatalf("range of %s: %v", owner, err)
		}
		return n
	}
	a, b := get("app/a", nil), get("app/b", nil)
	if a != 0 || b != 1 {
		t.Fatalf("ranges a=%d b=%d, want 0 and 1", a, b)
	}
	if again := get("app/a", nil); again != a {
		t.Fatalf("app/a got range %d, then %d: an owner keeps its range", a, again)
	}
	// A range still used by a deleted owner's containers is skipped.
	if c := get("app/c", map[int]bool{2: true}); c != 3 {
		t.Fatalf("app/c got range %d, want 3 (2 is busy)", c)
	}
	if _, err := s.IDRange(ctx, "app/d", 4, map[int]bool{2: true}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("no free range: got %v, want ErrUnavailable", err)
	}
	if err := s.ReleaseIDRange(ctx, "app/a"); err != nil {
		t.Fatal(err)
	}
	if d := get("app/d", nil); d != 0 {
		t.Fatalf("app/d got range %d, want the released 0", d)
	}
	if owned, err := s.OwnedIDRanges(ctx); err != nil || len(owned) != 3 || !owned[0] || !owned[1] || !owned[3] {
		t.Fatalf("OwnedIDRanges = %v (%v), want 0, 1 and 3 (2 was only busy)", owned, err)
	}
	s.ReleaseIDRange(ctx, "app/d")
	if owned, _ := s.OwnedIDRanges(ctx); owned[0] || len(owned) != 2 {
		t.Fatalf("OwnedIDRanges after a release = %v, want 1 and 3", owned)
	}
	get("app/d", nil)
	// Ranges are durable.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, err := s2.IDRange(ctx, "app/b", 4, nil); err != nil || n != 1 {
		t.Fatalf("after reopen app/b has range %d (%v), want 1", n, err)
	}
}

// TestContainerIDMapKept: a container's id range is part of its record,
// so a restarted daemon starts it in the same user namespace range.
func TestContainerIDMapKept(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	r := rec("u1", "uns")
	r.IDMap = &api.IDMap{HostID: 165536, Size: 65536}
	if err := s.CreateContainer(ctx, r); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.GetContainer(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if got.IDMap == nil || *got.IDMap != *r.IDMap {
		t.Fatalf("id map after reopen = %+v, want %+v", got.IDMap, r.IDMap)
	}
}
