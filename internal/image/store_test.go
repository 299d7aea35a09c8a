package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, root
}

func indexJSON(t *testing.T, root string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "images", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func save(t *testing.T, s *Store, img v1.Image, tags ...string) api.Image {
	t.Helper()
	got, err := s.Save(context.Background(), img, tags...)
	if err != nil {
		t.Fatalf("Save %v: %v", tags, err)
	}
	return got
}

func idOf(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// blobNames lists the blob files in the store.
func blobNames(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "images", "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// layerNames lists the entries of layers/, temporary ones included.
func layerNames(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkConsistent verifies that every blob index.json needs is on disk
// with the right digest, reading the files directly.
func checkConsistent(t *testing.T, root string) {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal(indexJSON(t, root), &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	read := func(h v1.Hash) []byte {
		b, err := os.ReadFile(filepath.Join(root, "images", "blobs", h.Algorithm, h.Hex))
		if err != nil {
			t.Fatalf("index.json needs blob %s: %v", h, err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != h.Hex {
			t.Fatalf("blob %s has the wrong content", h)
		}
		return b
	}
	for _, e := range idx.Manifests {
		var m v1.Manifest
		if err := json.Unmarshal(read(e.Digest), &m); err != nil {
			t.Fatalf("manifest %s: %v", e.Digest, err)
		}
		read(m.Config.Digest)
		for _, l := range m.Layers {
			read(l.Digest)
		}
	}
}

func wantCategory(t *testing.T, err, cat error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", cat)
	}
	if !errors.Is(err, cat) {
		t.Fatalf("error %q is %v, want %v", err, errdefs.Category(err), cat)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestOpenCreatesLayoutAndCleansTemp(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	save(t, s, imagetest.RandomImage(t, 1), "kept")
	before := indexJSON(t, root)

	// Leftovers of a crash: a half-unpacked layer and a half-written blob.
	stale := []string{
		filepath.Join(root, "layers", ".tmp-123", "bin"),
		filepath.Join(root, "images", ".tmp", "blob-456"),
	}
	for _, p := range stale {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", p, err)
		}
	}
	if !bytes.Equal(before, indexJSON(t, root)) {
		t.Error("Open changed index.json")
	}
	layoutFile, err := os.ReadFile(filepath.Join(root, "images", "oci-layout"))
	if err != nil || !strings.Contains(string(layoutFile), `"imageLayoutVersion":"1.0.0"`) {
		t.Errorf("oci-layout = %q, %v", layoutFile, err)
	}
	if _, err := s.Inspect(context.Background(), "kept"); err != nil {
		t.Errorf("Inspect after reopen: %v", err)
	}
}

func TestOpenRejectsCorruptIndex(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "images", "index.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(root)
	wantCategory(t, err, errdefs.ErrInvalid, "index.json")
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := imagetest.RandomImage(t, 1)
	b := imagetest.RandomImage(t, 1)
	c := imagetest.RandomImage(t, 1)
	d := imagetest.RandomImage(t, 1)
	save(t, s, a, "hello")
	save(t, s, b, "docker.io/library/hello:1.0", "docker.io/team/app:2")
	save(t, s, c, "127.0.0.1:5000/team/x:2")
	save(t, s, d) // untagged
	dID := idOf(t, d)

	tests := []struct {
		name    string
		ref     string
		wantID  string
		wantRef string
		err     error
		errPart []string
	}{
		{name: "short name finds localhost", ref: "hello", wantID: idOf(t, a), wantRef: "localhost/hello:latest"},
		{name: "short name falls back to docker.io", ref: "hello:1.0", wantID: idOf(t, b), wantRef: "docker.io/library/hello:1.0"},
		{name: "two component short name", ref: "team/app:2", wantID: idOf(t, b), wantRef: "docker.io/team/app:2"},
		{name: "docker.io without library", ref: "docker.io/hello:1.0", wantID: idOf(t, b), wantRef: "docker.io/library/hello:1.0"},
		{name: "qualified", ref: "127.0.0.1:5000/team/x:2", wantID: idOf(t, c), wantRef: "127.0.0.1:5000/team/x:2"},
		{name: "digest", ref: "localhost/hello@" + digestOf(t, a), wantID: idOf(t, a), wantRef: "localhost/hello@" + digestOf(t, a)},
		{name: "short name digest", ref: "hello@" + digestOf(t, a), wantID: idOf(t, a), wantRef: "localhost/hello@" + digestOf(t, a)},
		{name: "full ID", ref: dID, wantID: dID},
		{name: "bare full ID", ref: strings.TrimPrefix(dID, "sha256:"), wantID: dID},
		{name: "ID prefix", ref: dID[7:19], wantID: dID},
		{name: "sha256 ID prefix", ref: dID[:15], wantID: dID},
		{name: "digest of another repository", ref: "127.0.0.1:5000/team/x@" + digestOf(t, a), err: errdefs.ErrNotFound},
		{name: "unknown tag", ref: "hello:2", err: errdefs.ErrNotFound, errPart: []string{`image "hello:2" not found`, `skiff image build -t hello:2 DIR`, `skiff image import FILE`, `skiff image pull hello:2`}},
		{name: "unknown ID", ref: "sha256:" + strings.Repeat("f", 64), err: errdefs.ErrNotFound},
		{name: "invalid", ref: "Hello", err: errdefs.ErrInvalid, errPart: []string{`"Hello"`, "lowercase"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Inspect(ctx, tt.ref)
			if tt.err != nil {
				wantCategory(t, err, tt.err, tt.errPart...)
				return
			}
			if err != nil {
				t.Fatalf("Inspect(%q): %v", tt.ref, err)
			}
			if got.ID != tt.wantID {
				t.Errorf("Inspect(%q).ID = %s, want %s", tt.ref, got.ID, tt.wantID)
			}
			r, err := s.Resolve(ctx, tt.ref)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.ref, err)
			}
			if r.ID != tt.wantID || r.Ref != tt.wantRef {
				t.Errorf("Resolve(%q) = ref %q id %s, want ref %q id %s", tt.ref, r.Ref, r.ID, tt.wantRef, tt.wantID)
			}
		})
	}
}

// imageWithIDPrefix returns a layerless image whose ID starts with prefix,
// found by varying a label.
func imageWithIDPrefix(t *testing.T, prefix string, not string) v1.Image {
	t.Helper()
	for i := 0; i < 1<<22; i++ {
		cf := v1.ConfigFile{
			Created:      v1.Time{Time: imagetest.Created},
			OS:           "linux",
			Architecture: "amd64",
			Config:       v1.Config{Labels: map[string]string{"n": strings.Repeat("x", i%7) + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i >> 16), byte(i >> 8), byte(i)})}},
			RootFS:       v1.RootFS{Type: "layers"},
		}
		b, err := json.Marshal(&cf)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if strings.HasPrefix(h, prefix) && h != not {
			img := imagetest.Image(t, cf.Config)
			if got := idOf(t, img); got != "sha256:"+h {
				t.Fatalf("image ID %s, computed %s: the config encoding differs", got, h)
			}
			return img
		}
	}
	t.Fatalf("no config found with ID prefix %s", prefix)
	return nil
}

func TestLookupAmbiguousPrefix(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := imageWithIDPrefix(t, "", "")
	idA := idOf(t, a)
	b := imageWithIDPrefix(t, idA[7:11], idA[7:])
	save(t, s, a, "a")
	save(t, s, b, "b")
	_, err := s.Inspect(ctx, idA[7:11])
	wantCategory(t, err, errdefs.ErrInvalid, "ambiguous", idA, idOf(t, b))
	got, err := s.Inspect(ctx, idA[7:30])
	if err != nil || got.ID != idA {
		t.Errorf("a longer prefix: %v, %v", got.ID, err)
	}
}

func TestListCountAndTags(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := imagetest.RandomImage(t, 2)
	b := imagetest.RandomImage(t, 1)
	save(t, s, a, "one", "two:1")
	save(t, s, b)
	if err := s.Tag(ctx, "one", "example.com/three:3"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List has %d images, want 2: %+v", len(list), list)
	}
	byID := map[string]api.Image{}
	for _, im := range list {
		byID[im.ID] = im
	}
	ga := byID[idOf(t, a)]
	if want := []string{"example.com/three:3", "localhost/one:latest", "localhost/two:1"}; !slices.Equal(ga.Tags, want) {
		t.Errorf("tags = %q, want %q", ga.Tags, want)
	}
	if len(ga.Layers) != 2 || ga.Digest != digestOf(t, a) || ga.OS != "linux" || ga.Size <= 0 {
		t.Errorf("image a = %+v", ga)
	}
	if gb := byID[idOf(t, b)]; len(gb.Tags) != 0 || gb.Tags == nil {
		t.Errorf("untagged image tags = %#v, want empty", gb.Tags)
	}
	n, err := s.Count(ctx)
	if err != nil || n != 2 {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
}

func TestTag(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		src, dst string
		err      error
		wantTags map[string][]string // image name -> tags after
	}{
		{name: "short name goes under localhost", src: "a", dst: "world:2",
			wantTags: map[string][]string{"a": {"localhost/a:latest", "localhost/world:2"}, "b": {"localhost/b:latest"}}},
		{name: "qualified", src: "a", dst: "127.0.0.1:5000/x",
			wantTags: map[string][]string{"a": {"127.0.0.1:5000/x:latest", "localhost/a:latest"}, "b": {"localhost/b:latest"}}},
		{name: "moving the last tag leaves the image dangling", src: "a", dst: "b",
			wantTags: map[string][]string{"a": {"localhost/a:latest", "localhost/b:latest"}, "b": {}}},
		{name: "retag same image is a no-op", src: "a", dst: "a",
			wantTags: map[string][]string{"a": {"localhost/a:latest"}, "b": {"localhost/b:latest"}}},
		{name: "digest target", src: "a", dst: "x@" + testDigest, err: errdefs.ErrInvalid},
		{name: "bad target", src: "a", dst: "X", err: errdefs.ErrInvalid},
		{name: "unknown source", src: "nope", dst: "x", err: errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			imgs := map[string]v1.Image{"a": imagetest.RandomImage(t, 1), "b": imagetest.RandomImage(t, 1)}
			save(t, s, imgs["a"], "a")
			save(t, s, imgs["b"], "b")
			before := indexJSON(t, root)
			err := s.Tag(ctx, tt.src, tt.dst)
			if tt.err != nil {
				wantCategory(t, err, tt.err)
				if !bytes.Equal(before, indexJSON(t, root)) {
					t.Error("a failed Tag changed index.json")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for n, want := range tt.wantTags {
				got, err := s.Inspect(ctx, idOf(t, imgs[n]))
				if err != nil {
					t.Fatalf("image %s: %v", n, err)
				}
				if !slices.Equal(got.Tags, want) {
					t.Errorf("image %s tags = %q, want %q", n, got.Tags, want)
				}
			}
			checkConsistent(t, root)
		})
	}
}

func TestExternalChangeIsNoticed(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	save(t, s, imagetest.RandomImage(t, 1), "a")
	// Another program (umoci, skopeo) rewrites index.json.
	other, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// Ensure a different mtime even on coarse clocks.
	time.Sleep(10 * time.Millisecond)
	save(t, other, imagetest.RandomImage(t, 1), "b")
	if _, err := s.Inspect(ctx, "b"); err != nil {
		t.Errorf("the first store does not see the new image: %v", err)
	}
}

// Workers save, resolve, list, prune and remove at once. Each worker owns
// its tag, so its Resolve right after its Save must succeed; and no
// operation may fail because another one deleted what it was reading.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	const workers, rounds = 4, 24
	base := imagetest.Layer(t, imagetest.File{Name: "base", Body: "shared"})
	imgs := make([][]v1.Image, workers)
	for w := range imgs {
		for r := 0; r < rounds; r++ {
			top := imagetest.Layer(t, imagetest.File{Name: "top", Body: strings.Repeat("x", w*rounds+r)})
			imgs[w] = append(imgs[w], imagetest.Image(t, v1.Config{}, base, top))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*6)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := "w" + string(rune('a'+w))
			for r, img := range imgs[w] {
				fail := func(op string, err error) { errs <- fmt.Errorf("worker %s round %d: %s: %w", tag, r, op, err) }
				saved, err := s.Save(ctx, img, tag)
				if err != nil {
					fail("save", err)
					continue
				}
				if got, err := s.Resolve(ctx, tag); err != nil {
					fail("resolve", err)
				} else if got.ID != saved.ID {
					fail("resolve", fmt.Errorf("got image %s, saved %s", got.ID, saved.ID))
				}
				if _, err := s.List(ctx); err != nil {
					fail("list", err)
				}
				if _, err := s.Inspect(ctx, saved.ID); err != nil {
					fail("inspect", err)
				}
				if r%3 == 0 {
					if _, err := s.Prune(ctx, nil); err != nil {
						fail("prune", err)
					}
				}
				if r%4 == 1 {
					if _, err := s.Remove(ctx, tag, false, nil); err != nil {
						fail("remove", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkConsistent(t, root)
	// Every remaining image still resolves with all its layers present.
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range list {
		r, err := s.Resolve(ctx, im.ID)
		if err != nil {
			t.Fatalf("Resolve %s: %v", im.ID, err)
		}
		for _, d := range r.Layers {
			if _, err := os.Stat(d); err != nil {
				t.Errorf("layer dir of %s: %v", im.ID, err)
			}
		}
	}
}

// A reader never fails on an image that a Remove or Prune deletes while
// it reads: it sees the index from before or from after, whole. The
// reader starts with a cold metadata cache (a reopened store); on its
// first cache miss the hook starts the Remove or Prune and gives it time
// to finish before the reader goes on. A reader that let go of the index
// lock too early then finds the deleted image's blobs gone.
func TestReadersDuringRemove(t *testing.T) {
	ctx := context.Background()
	readers := []struct {
		name string
		read func(t *testing.T, s *Store, first string) error
	}{
		{name: "list", read: func(_ *testing.T, s *Store, _ string) error { _, err := s.List(ctx); return err }},
		{name: "count", read: func(_ *testing.T, s *Store, _ string) error { _, err := s.Count(ctx); return err }},
		{name: "inspect", read: func(_ *testing.T, s *Store, _ string) error { _, err := s.Inspect(ctx, "first"); return err }},
		{name: "resolve by ID", read: func(_ *testing.T, s *Store, first string) error { _, err := s.Resolve(ctx, first); return err }},
		{name: "save", read: func(t *testing.T, s *Store, _ string) error {
			_, err := s.Save(ctx, imagetest.RandomImage(t, 1), "new")
			return err
		}},
	}
	writers := []struct {
		name string
		// tag is the tag of the image the writer deletes, "" for a
		// dangling image.
		tag   string
		write func(s *Store) error
	}{
		{name: "remove", tag: "gone", write: func(s *Store) error { _, err := s.Remove(ctx, "gone", false, nil); return err }},
		{name: "prune", write: func(s *Store) error { _, err := s.Prune(ctx, nil); return err }},
	}
	for _, w := range writers {
		for _, r := range readers {
			t.Run(r.name+" during "+w.name, func(t *testing.T) {
				s0, root := newStore(t)
				first := save(t, s0, imagetest.RandomImage(t, 1), "first")
				var tags []string
				if w.tag != "" {
					tags = append(tags, w.tag)
				}
				gone := save(t, s0, imagetest.RandomImage(t, 1), tags...)
				s, err := Open(root) // a cold metadata cache
				if err != nil {
					t.Fatal(err)
				}
				var started atomic.Bool
				writeDone := make(chan error, 1)
				s.beforeLoadMeta = func(v1.Descriptor) {
					if !started.CompareAndSwap(false, true) {
						return
					}
					go func() { writeDone <- w.write(s) }()
					// A correct store makes the writer wait for the
					// reader; this only bounds that wait.
					select {
					case err := <-writeDone:
						writeDone <- err
					case <-time.After(150 * time.Millisecond):
					}
				}
				if err := r.read(t, s, first.ID); err != nil {
					t.Errorf("%s while %s deleted image %s: %v", r.name, w.name, gone.ID, err)
				}
				if !started.Load() {
					t.Fatal("the reader read no metadata from disk: the test does not interleave")
				}
				if err := <-writeDone; err != nil {
					t.Errorf("%s: %v", w.name, err)
				}
				if _, err := s.Inspect(ctx, gone.ID); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("image %s after the %s: %v, want not found", gone.ID, w.name, err)
				}
				checkConsistent(t, root)
			})
		}
	}
}
