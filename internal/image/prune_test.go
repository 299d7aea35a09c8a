package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
)

// blobsOf lists the blob hexes an image is made of.
func blobsOf(t *testing.T, img v1.Image) []string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{digestOf(t, img)[7:], m.Config.Digest.Hex}
	for _, l := range m.Layers {
		out = append(out, l.Digest.Hex)
	}
	return out
}

func chainsOf(t *testing.T, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range chainIDs(cfg.RootFS.DiffIDs) {
		out = append(out, c.Hex)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// present reports whether all of an image's blobs and layer dirs are on
// disk (false if any is missing).
func present(t *testing.T, root string, img v1.Image) (blobs, layers bool) {
	t.Helper()
	blobs, layers = true, true
	for _, b := range blobsOf(t, img) {
		blobs = blobs && exists(filepath.Join(root, "images", "blobs", "sha256", b))
	}
	for _, c := range chainsOf(t, img) {
		layers = layers && exists(filepath.Join(root, "layers", c))
	}
	return blobs, layers
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	type setup struct {
		s    *Store
		root string
		img  v1.Image
		id   string
	}
	tests := []struct {
		name string
		// tags given to the image (the store also holds an unrelated image
		// sharing its base layer).
		tags         []string
		ref          func(st setup) string
		force        bool
		inUse        bool
		err          error
		wantUntagged []string
		wantDeleted  bool
		wantTags     []string // tags left when the image survives
	}{
		{name: "one of two tags", tags: []string{"a", "b"}, ref: func(setup) string { return "a" },
			wantUntagged: []string{"localhost/a:latest"}, wantTags: []string{"localhost/b:latest"}},
		{name: "last tag deletes", tags: []string{"a"}, ref: func(setup) string { return "a" },
			wantUntagged: []string{"localhost/a:latest"}, wantDeleted: true},
		{name: "last tag in use is a conflict", tags: []string{"a"}, ref: func(setup) string { return "a" },
			inUse: true, err: errdefs.ErrConflict},
		{name: "last tag in use with force untags and keeps", tags: []string{"a"}, ref: func(setup) string { return "a" },
			inUse: true, force: true, wantUntagged: []string{"localhost/a:latest"}, wantTags: []string{}},
		{name: "one of two tags in use", tags: []string{"a", "b"}, ref: func(setup) string { return "b" },
			inUse: true, wantUntagged: []string{"localhost/b:latest"}, wantTags: []string{"localhost/a:latest"}},
		{name: "by ID with several tags is a conflict", tags: []string{"a", "b"}, ref: func(st setup) string { return st.id },
			err: errdefs.ErrConflict},
		{name: "by ID with several tags and force", tags: []string{"a", "b"}, ref: func(st setup) string { return st.id },
			force: true, wantUntagged: []string{"localhost/a:latest", "localhost/b:latest"}, wantDeleted: true},
		{name: "by ID prefix", tags: []string{"a"}, ref: func(st setup) string { return st.id[7:19] },
			wantUntagged: []string{"localhost/a:latest"}, wantDeleted: true},
		{name: "untagged by ID", ref: func(st setup) string { return st.id }, wantDeleted: true},
		{name: "untagged in use by ID", ref: func(st setup) string { return st.id }, inUse: true, err: errdefs.ErrConflict},
		{name: "by digest", tags: []string{"a", "example.com/a:1"}, ref: func(st setup) string { return "localhost/a@" + digestOf(t, st.img) },
			wantUntagged: []string{"localhost/a:latest"}, wantTags: []string{"example.com/a:1"}},
		{name: "unknown", tags: []string{"a"}, ref: func(setup) string { return "nope" }, err: errdefs.ErrNotFound},
		{name: "invalid", tags: []string{"a"}, ref: func(setup) string { return "N O" }, err: errdefs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			base := imagetest.Layer(t, imagetest.File{Name: "base", Body: "shared"})
			img := imagetest.Image(t, v1.Config{}, base, imagetest.Layer(t, imagetest.File{Name: "own", Body: tt.name}))
			other := imagetest.Image(t, v1.Config{}, base)
			save(t, s, img, tt.tags...)
			save(t, s, other, "other")
			st := setup{s: s, root: root, img: img, id: idOf(t, img)}
			for _, r := range []string{st.id, "other"} {
				if _, err := s.Resolve(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			before := indexJSON(t, root)
			var asked []string
			inUse := func(id string) bool {
				asked = append(asked, id)
				return tt.inUse && id == st.id
			}
			resp, err := s.Remove(ctx, tt.ref(st), tt.force, inUse)
			if tt.err != nil {
				wantCategory(t, err, tt.err)
				if !bytes.Equal(before, indexJSON(t, root)) {
					t.Error("a failed Remove changed index.json")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(resp.Untagged, tt.wantUntagged) {
				t.Errorf("Untagged = %q, want %q", resp.Untagged, tt.wantUntagged)
			}
			blobs, layers := present(t, root, img)
			if tt.wantDeleted {
				if !slices.Equal(resp.Deleted, []string{st.id}) {
					t.Errorf("Deleted = %q, want [%s]", resp.Deleted, st.id)
				}
				if _, err := s.Inspect(ctx, st.id); !errorsIs(err, errdefs.ErrNotFound) {
					t.Errorf("the deleted image is still there: %v", err)
				}
				if blobs || layers {
					t.Errorf("the deleted image's files are still there: blobs %v layers %v", blobs, layers)
				}
			} else {
				if len(resp.Deleted) != 0 {
					t.Errorf("Deleted = %q, want none", resp.Deleted)
				}
				got, err := s.Inspect(ctx, st.id)
				if err != nil {
					t.Fatalf("the image is gone: %v", err)
				}
				if !slices.Equal(got.Tags, tt.wantTags) {
					t.Errorf("tags left = %q, want %q", got.Tags, tt.wantTags)
				}
				if !blobs || !layers {
					t.Errorf("the kept image lost files: blobs %v layers %v", blobs, layers)
				}
			}
			// The other image, sharing the base layer, is intact.
			if b, l := present(t, root, other); !b || !l {
				t.Errorf("the other image lost files: blobs %v layers %v", b, l)
			}
			checkConsistent(t, root)
		})
	}
}

func errorsIs(err, target error) bool { return err != nil && errdefs.Category(err) == target }

func TestPrune(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// tagged: the image keeps a tag; inUse: a container uses it.
		tagged, inUse bool
		wantKept      bool
	}{
		{name: "tagged", tagged: true, wantKept: true},
		{name: "tagged and in use", tagged: true, inUse: true, wantKept: true},
		{name: "dangling", wantKept: false},
		{name: "dangling in use", inUse: true, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			base := imagetest.Layer(t, imagetest.File{Name: "base", Body: "shared"})
			img := imagetest.Image(t, v1.Config{}, base, imagetest.Layer(t, imagetest.File{Name: "own", Body: tt.name}))
			keeper := imagetest.Image(t, v1.Config{}, base)
			var tags []string
			if tt.tagged {
				tags = []string{"subject"}
			}
			save(t, s, img, tags...)
			save(t, s, keeper, "keeper")
			id := idOf(t, img)
			for _, r := range []string{id, "keeper"} {
				if _, err := s.Resolve(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			// Leftovers nothing refers to: a blob of an interrupted pull and
			// a layer dir of a deleted image.
			orphanBlob := filepath.Join(root, "images", "blobs", "sha256", "ab"+string(bytes.Repeat([]byte("0"), 62)))
			orphanLayer := filepath.Join(root, "layers", "cd"+string(bytes.Repeat([]byte("0"), 62)))
			if err := os.WriteFile(orphanBlob, []byte("orphan!"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(orphanLayer, "x"), 0o755); err != nil {
				t.Fatal(err)
			}
			resp, err := s.Prune(ctx, func(got string) bool { return tt.inUse && got == id })
			if err != nil {
				t.Fatal(err)
			}
			if exists(orphanBlob) || exists(orphanLayer) {
				t.Error("Prune kept unreferenced files")
			}
			blobs, layers := present(t, root, img)
			_, inspectErr := s.Inspect(ctx, id)
			if tt.wantKept {
				if !blobs || !layers || inspectErr != nil {
					t.Errorf("kept image: blobs %v layers %v inspect %v", blobs, layers, inspectErr)
				}
				if resp.BlobsDeleted != 1 || resp.LayersDeleted != 1 {
					t.Errorf("Prune = %+v, want the two orphans only", resp)
				}
			} else {
				if blobs || layers || inspectErr == nil {
					t.Errorf("pruned image: blobs %v layers %v inspect %v", blobs, layers, inspectErr)
				}
				// manifest, config, own layer + orphan; own layer dir + orphan.
				if resp.BlobsDeleted != 4 || resp.LayersDeleted != 2 {
					t.Errorf("Prune = %+v, want 4 blobs and 2 layers", resp)
				}
			}
			if resp.BytesFreed <= 0 {
				t.Errorf("BytesFreed = %d", resp.BytesFreed)
			}
			if b, l := present(t, root, keeper); !b || !l {
				t.Errorf("the keeper lost files: blobs %v layers %v", b, l)
			}
			checkConsistent(t, root)
		})
	}
}

func TestPruneAfterForcedRemove(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	img := imagetest.RandomImage(t, 2)
	save(t, s, img, "app")
	id := idOf(t, img)
	if _, err := s.Resolve(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	used := true
	inUse := func(got string) bool { return used && got == id }
	if _, err := s.Remove(ctx, "app", true, inUse); err != nil {
		t.Fatal(err)
	}
	// While the container lives, Prune keeps the dangling image.
	if _, err := s.Prune(ctx, inUse); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Resolve(ctx, id); err != nil || len(r.Layers) != 2 {
		t.Fatalf("Resolve of the kept image: %v", err)
	}
	// Once the container is gone, it goes.
	used = false
	if _, err := s.Prune(ctx, inUse); err != nil {
		t.Fatal(err)
	}
	if b, l := present(t, root, img); b || l {
		t.Errorf("files left: blobs %v layers %v", b, l)
	}
	if n, _ := s.Count(ctx); n != 0 {
		t.Errorf("Count = %d after pruning everything", n)
	}
	if got := blobNames(t, root); len(got) != 0 {
		t.Errorf("blobs left: %v", got)
	}
}

// A pin (an operation in progress) protects a blob from the sweep.
func TestPruneSparesPinned(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	h := v1.Hash{Algorithm: "sha256", Hex: string(bytes.Repeat([]byte("e"), 64))}
	p := filepath.Join(root, "images", "blobs", "sha256", h.Hex)
	if err := os.WriteFile(p, []byte("in flight"), 0o644); err != nil {
		t.Fatal(err)
	}
	pins := s.pin(blobKey(h))
	if _, err := s.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if !exists(p) {
		t.Fatal("Prune deleted a pinned blob")
	}
	pins.release()
	if _, err := s.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if exists(p) {
		t.Fatal("Prune kept an unpinned orphan")
	}
}
