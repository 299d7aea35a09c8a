package image

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/internal/image/imagetest"
)

func layerDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBuildCachePutLookup stores results, reads them back through a new
// Open (a daemon restart), and checks what a hit returns.
func TestBuildCachePutLookup(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	l := imagetest.Layer(t, imagetest.File{Name: "hello", Body: "hi"})
	newest := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.BuildCache().Put(ctx, "k-layer", l, newest); err != nil {
		t.Fatal(err)
	}
	if err := s.BuildCache().Put(ctx, "k-empty", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !exists(s.blobPath(layerDigest(t, l))) {
		t.Fatal("Put did not store the layer as a blob")
	}

	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c := s2.BuildCache()
	got, gotNewest, ok := c.Lookup("k-layer")
	if !ok || got == nil || !gotNewest.Equal(newest) {
		t.Fatalf("Lookup after reopening = %v, %v, %v; want the layer and %v", got, gotNewest, ok, newest)
	}
	gd, _ := got.Digest()
	gdiff, _ := got.DiffID()
	wdiff, _ := l.DiffID()
	if gd != layerDigest(t, l) || gdiff != wdiff {
		t.Fatalf("hit has digests %s %s, not the stored layer's", gd, gdiff)
	}
	rc, err := got.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	want := imagetest.Tar(t, imagetest.File{Name: "hello", Body: "hi"})
	if string(b) != string(want) {
		t.Fatal("the hit's tar differs from the stored layer's")
	}
	if got, _, ok := c.Lookup("k-empty"); !ok || got != nil {
		t.Fatalf("Lookup of a step without layer = %v, %v; want nil, true", got, ok)
	}
	if _, _, ok := c.Lookup("k-missing"); ok {
		t.Fatal("Lookup of an unknown key hit")
	}
}

// TestBuildCacheKeepsBlobsFromSweeps: Remove's and Prune's sweeps keep
// the blobs entries name; a blob gone anyway is a miss, not an error.
func TestBuildCacheKeepsBlobsFromSweeps(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	l := imagetest.Layer(t, imagetest.File{Name: "a", Body: "cached"})
	if err := s.BuildCache().Put(ctx, "k", l, time.Time{}); err != nil {
		t.Fatal(err)
	}
	img := imagetest.Image(t, v1.Config{}, l)
	save(t, s, img, "x")
	if _, err := s.Remove(ctx, "x", false, nil); err != nil {
		t.Fatal(err)
	}
	p := s.blobPath(layerDigest(t, l))
	if !exists(p) {
		t.Fatal("removing the image deleted a blob the build cache names")
	}
	if got := s.BuildCache().Size(); got <= 0 {
		t.Fatalf("Size = %d, want the blob's size", got)
	}
	os.Remove(p)
	if _, _, ok := s.BuildCache().Lookup("k"); ok {
		t.Fatal("an entry whose blob is gone hit")
	}
}

// TestBuildCachePrune: Prune drops entries by last use and the mounts,
// then the blobs; the store's Prune empties the cache too.
func TestBuildCachePrune(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	c := s.BuildCache()
	old := imagetest.Layer(t, imagetest.File{Name: "old", Body: "old"})
	recent := imagetest.Layer(t, imagetest.File{Name: "new", Body: "new"})
	if err := c.Put(ctx, "old", old, time.Time{}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.entries["old"].LastUsed = time.Now().Add(-48 * time.Hour)
	c.mu.Unlock()
	if err := c.Put(ctx, "new", recent, time.Time{}); err != nil {
		t.Fatal(err)
	}
	mount := filepath.Join(root, "buildcache", "mounts", "m1")
	if err := os.MkdirAll(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(mount, "f"), []byte("0123456789"), 0o644)

	res, err := c.Prune(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 1 || res.Mounts != 0 || res.BytesFreed <= 0 {
		t.Fatalf("Prune(older than 24h) = %+v, want 1 entry, no mount, bytes freed", res)
	}
	if exists(s.blobPath(layerDigest(t, old))) || !exists(s.blobPath(layerDigest(t, recent))) {
		t.Fatal("Prune(older than 24h) did not delete exactly the old entry's blob")
	}
	if _, _, ok := c.Lookup("new"); !ok {
		t.Fatal("the recent entry is gone")
	}

	resp, err := s.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.BuildCacheEntriesDeleted != 1 || resp.BlobsDeleted != 1 {
		t.Fatalf("image Prune = %+v, want the last entry and its blob deleted", resp)
	}
	if exists(mount) {
		t.Fatal("image Prune left a cache mount")
	}
	if got := c.Size(); got != 0 {
		t.Fatalf("Size after prune = %d, want 0", got)
	}
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s2.BuildCache().Lookup("new"); ok {
		t.Fatal("a pruned entry came back after reopening")
	}
}

// TestBuildCacheUnreadableIndex: a damaged index starts an empty cache.
func TestBuildCacheUnreadableIndex(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "buildcache"), 0o700)
	os.WriteFile(filepath.Join(root, "buildcache", "index.json"), []byte("{not json"), 0o644)
	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open with a damaged build cache index: %v", err)
	}
	if err := s.BuildCache().Put(context.Background(), "k", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.BuildCache().Lookup("k"); !ok {
		t.Fatal("the cache does not work after a damaged index")
	}
}
