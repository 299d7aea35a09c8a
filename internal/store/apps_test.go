package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func testApp(name, image string) api.App {
	return api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind,
		Metadata: api.ObjectMeta{Name: name, Generation: 1}, Spec: api.AppSpec{Image: image}}
}

func TestAppConditionalUpdate(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	v1, err := s.CreateApp(ctx, testApp("shop", "shop:1"))
	if err != nil {
		t.Fatal(err)
	}
	if v1.Metadata.ResourceVersion == "" {
		t.Fatal("created App has no resourceVersion")
	}
	if _, err := s.CreateApp(ctx, testApp("shop", "shop:9")); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second create: got %v, want a conflict", err)
	}
	got, err := s.GetApp(ctx, "shop")
	if err != nil || got.Metadata.ResourceVersion != v1.Metadata.ResourceVersion || got.Spec.Image != "shop:1" {
		t.Fatalf("get = %+v, %v; want shop:1 at %s", got.Metadata, err, v1.Metadata.ResourceVersion)
	}

	// A writer that read v1 wins; a second writer that also read v1 loses.
	a := got
	a.Spec.Image = "shop:2"
	v2, err := s.UpdateApp(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Metadata.ResourceVersion == v1.Metadata.ResourceVersion {
		t.Fatalf("update kept resourceVersion %s", v2.Metadata.ResourceVersion)
	}
	b := got
	b.Spec.Image = "shop:3"
	_, err = s.UpdateApp(ctx, b)
	var stale *StaleError
	if !errors.As(err, &stale) || !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("stale update: got %v, want a StaleError in the conflict category", err)
	}
	if stale.Read != v1.Metadata.ResourceVersion || stale.Current != v2.Metadata.ResourceVersion {
		t.Errorf("stale error names read %s, current %s; want %s, %s", stale.Read, stale.Current, v1.Metadata.ResourceVersion, v2.Metadata.ResourceVersion)
	}
	if got, _ := s.GetApp(ctx, "shop"); got.Spec.Image != "shop:2" || got.Metadata.ResourceVersion != v2.Metadata.ResourceVersion {
		t.Fatalf("after the refused update: %s at %s, want shop:2 at %s", got.Spec.Image, got.Metadata.ResourceVersion, v2.Metadata.ResourceVersion)
	}
	if _, err := s.UpdateApp(ctx, testApp("shop", "shop:4")); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("update without a version: got %v, want invalid", err)
	}

	// Deleted and created again: the old version does not come back.
	if err := s.DeleteApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateApp(ctx, v2); !errors.As(err, &stale) || stale.Current != "" {
		t.Fatalf("update of a deleted App: got %v, want a StaleError", err)
	}
	again, err := s.CreateApp(ctx, testApp("shop", "shop:5"))
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{v1.Metadata.ResourceVersion, v2.Metadata.ResourceVersion} {
		if again.Metadata.ResourceVersion == old {
			t.Fatalf("re-created App reuses resourceVersion %s", old)
		}
	}
}

func TestAppStatusUpdateLeavesSpecAlone(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	read, err := s.CreateApp(ctx, testApp("shop", "shop:1"))
	if err != nil {
		t.Fatal(err)
	}
	// An apply lands after the controller read the App.
	a := read
	a.Spec.Image, a.Metadata.Generation = "shop:2", 2
	a.Status.ObservedGeneration = 99 // status in an update is not written
	applied, err := s.UpdateApp(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if applied.Status.ObservedGeneration != 0 {
		t.Fatalf("UpdateApp wrote status: %+v", applied.Status)
	}
	// The controller's status, computed from its older read, is refused
	// and the applied spec stays.
	old := api.AppStatus{ObservedGeneration: 1, LatestCreatedRevision: "shop-00001"}
	if _, err := s.UpdateAppStatus(ctx, "shop", read.Metadata.ResourceVersion, old); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("stale status write: got %v, want a conflict", err)
	}
	got, _ := s.GetApp(ctx, "shop")
	if got.Spec.Image != "shop:2" || got.Metadata.Generation != 2 || got.Status.ObservedGeneration != 0 {
		t.Fatalf("after the refused status write: %s generation %d status %+v", got.Spec.Image, got.Metadata.Generation, got.Status)
	}
	// A status based on the current version is written, and only status.
	st := api.AppStatus{ObservedGeneration: 2, LatestCreatedRevision: "shop-00002"}
	out, err := s.UpdateAppStatus(ctx, "shop", got.Metadata.ResourceVersion, st)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetApp(ctx, "shop")
	if got.Spec.Image != "shop:2" || got.Metadata.Generation != 2 || got.Metadata.UID != applied.Metadata.UID {
		t.Fatalf("status write changed spec or metadata: %+v %s", got.Metadata, got.Spec.Image)
	}
	if got.Status.LatestCreatedRevision != "shop-00002" || got.Metadata.ResourceVersion != out.Metadata.ResourceVersion || out.Metadata.ResourceVersion == applied.Metadata.ResourceVersion {
		t.Fatalf("status write: stored %+v at %s, returned %s, before %s", got.Status, got.Metadata.ResourceVersion, out.Metadata.ResourceVersion, applied.Metadata.ResourceVersion)
	}
}

// TestAppConcurrentUpdatesLoseNothing runs read-modify-write cycles from
// many goroutines, each retrying on a stale version: every one counts.
func TestAppConcurrentUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	a := testApp("count", "count:1")
	a.Metadata.Annotations = map[string]string{"n": "0"}
	if _, err := s.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				cur, err := s.GetApp(ctx, "count")
				if err != nil {
					errs <- err
					return
				}
				n, _ := strconv.Atoi(cur.Metadata.Annotations["n"])
				cur.Metadata.Annotations = map[string]string{"n": strconv.Itoa(n + 1)}
				_, err = s.UpdateApp(ctx, cur)
				var stale *StaleError
				switch {
				case errors.As(err, &stale):
				case err != nil:
					errs <- err
					return
				default:
					done++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := s.GetApp(ctx, "count")
	if got.Metadata.Annotations["n"] != strconv.Itoa(writers*each) {
		t.Fatalf("counter = %s after %d acknowledged increments", got.Metadata.Annotations["n"], writers*each)
	}
}

// TestAppsStoredBeforeVersions: an App written by a skiff without
// resourceVersions is read at version 1 after the upgrade and can be
// updated at it.
func TestAppsStoredBeforeVersions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "skiff.db")
	first := slices.IndexFunc(migrations, func(m string) bool { return strings.HasPrefix(m, "CREATE TABLE resource_version") })
	if first < 0 {
		t.Fatal("no resource_version migration")
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := append([]string{`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		fmt.Sprintf(`INSERT INTO schema_version (version) VALUES (%d)`, first)}, migrations[:first]...)
	stmts = append(stmts, `INSERT INTO apps (name, doc, updated) VALUES ('old', '{"apiVersion":"skiff.dev/v1","kind":"App","metadata":{"name":"old","generation":4},"spec":{"image":"old:1"}}', 0)`)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.GetApp(ctx, "old")
	if err != nil || a.Metadata.ResourceVersion != "1" || a.Metadata.Generation != 4 || a.Spec.Image != "old:1" {
		t.Fatalf("old App after the upgrade: %+v %s, %v", a.Metadata, a.Spec.Image, err)
	}
	a.Spec.Image = "old:2"
	out, err := s.UpdateApp(ctx, a)
	if err != nil || out.Metadata.ResourceVersion == "1" {
		t.Fatalf("update at version 1: %+v, %v", out.Metadata, err)
	}
}
