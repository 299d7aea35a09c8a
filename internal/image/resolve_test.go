package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
	"skiff.dev/skiff/internal/image/unpack"
)

func TestResolveUnpacksOnce(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	s.lazy = true // Resolve unpacks
	img := imagetest.BusyboxImage(t)
	save(t, s, img, "busybox")

	r1, err := s.Resolve(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.unpacks.Load(); n != 1 {
		t.Fatalf("first Resolve unpacked %d layers, want 1", n)
	}
	fi, err := os.Lstat(filepath.Join(r1.Layers[0], "bin", "sh"))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("bin/sh in the unpacked layer: %v %v", fi, err)
	}
	if !slices.Equal(r1.Config.Config.Cmd, []string{"sh"}) {
		t.Errorf("Config.Cmd = %q", r1.Config.Config.Cmd)
	}
	if r1.ID != idOf(t, img) || r1.Digest != digestOf(t, img) || r1.Ref != "localhost/busybox:latest" {
		t.Errorf("Resolved = %+v", r1)
	}
	mtime := fi.ModTime()

	r2, err := s.Resolve(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.unpacks.Load(); n != 1 {
		t.Errorf("second Resolve unpacked again: %d unpacks", n)
	}
	if !slices.Equal(r1.Layers, r2.Layers) {
		t.Errorf("layers differ: %v then %v", r1.Layers, r2.Layers)
	}
	// A new Store on the same root finds the layer on disk.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Resolve(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	if n := s2.unpacks.Load(); n != 0 {
		t.Errorf("a reopened store unpacked %d layers again", n)
	}
	if fi, _ := os.Lstat(filepath.Join(r1.Layers[0], "bin", "sh")); !fi.ModTime().Equal(mtime) {
		t.Error("the layer was rewritten")
	}
}

func TestResolveConcurrentUnpacksOnce(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	s.lazy = true // Resolve unpacks
	base := imagetest.Layer(t, imagetest.File{Name: "base", Body: "base"})
	mid := imagetest.Layer(t, imagetest.File{Name: "mid", Body: "mid"})
	a := imagetest.Image(t, v1.Config{}, base, mid, imagetest.Layer(t, imagetest.File{Name: "top", Body: "a"}))
	b := imagetest.Image(t, v1.Config{}, base, mid, imagetest.Layer(t, imagetest.File{Name: "top", Body: "b"}))
	save(t, s, a, "a")
	save(t, s, b, "b")

	// Slow the unpacker down so the Resolves overlap.
	real := s.apply
	s.apply = func(ctx context.Context, dir string, r io.Reader, o unpack.Options) (unpack.Stats, error) {
		time.Sleep(20 * time.Millisecond)
		return real(ctx, dir, r, o)
	}
	const n = 8
	var wg sync.WaitGroup
	results := make([]*Resolved, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := "a"
			if i%2 == 1 {
				ref = "b"
			}
			results[i], errs[i] = s.Resolve(ctx, ref)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Resolve %d: %v", i, err)
		}
	}
	// base, mid, and two tops.
	if got := s.unpacks.Load(); got != 4 {
		t.Errorf("%d layers unpacked, want 4", got)
	}
	if got := layerNames(t, root); len(got) != 4 {
		t.Errorf("layers/ holds %v, want 4 chain dirs", got)
	}
	// Shared lower layers are the same directories.
	if !slices.Equal(results[0].Layers[1:], results[1].Layers[1:]) || results[0].Layers[0] == results[1].Layers[0] {
		t.Errorf("layers of a %v and b %v", results[0].Layers, results[1].Layers)
	}
}

func TestResolveLayerOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	s.lazy = true // Resolve unpacks
	var layers []v1.Layer
	for _, n := range []string{"bottom", "middle", "top"} {
		layers = append(layers, imagetest.Layer(t, imagetest.File{Name: n, Body: n}))
	}
	img := imagetest.Image(t, v1.Config{}, layers...)
	save(t, s, img, "ordered")
	r, err := s.Resolve(ctx, "ordered")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	chains := chainIDs(cfg.RootFS.DiffIDs)
	for i, want := range []string{"top", "middle", "bottom"} {
		if _, err := os.Stat(filepath.Join(r.Layers[i], want)); err != nil {
			t.Errorf("Layers[%d] = %s lacks %s: %v", i, r.Layers[i], want, err)
		}
		if filepath.Base(r.Layers[i]) != chains[2-i].Hex {
			t.Errorf("Layers[%d] is %s, want chain %s", i, r.Layers[i], chains[2-i].Hex)
		}
	}
	if chains[0] != cfg.RootFS.DiffIDs[0] || chains[1] == cfg.RootFS.DiffIDs[1] {
		t.Errorf("chain IDs %v from diff IDs %v", chains, cfg.RootFS.DiffIDs)
	}
}

func TestResolveRefusesBadLayer(t *testing.T) {
	ctx := context.Background()
	good := imagetest.Layer(t, imagetest.File{Name: "ok", Body: "ok"})
	tests := []struct {
		name  string
		bad   v1.Layer
		parts []string
	}{
		{
			name:  "entry escaping the root",
			bad:   imagetest.Layer(t, imagetest.File{Name: "fine", Body: "x"}, imagetest.File{Name: "../../escape", Body: "evil"}),
			parts: []string{`"../../escape"`},
		},
		{
			name:  "write through a symlink",
			bad:   imagetest.Layer(t, imagetest.File{Name: "etc", Type: tar.TypeSymlink, Linkname: "/etc"}, imagetest.File{Name: "etc/passwd", Body: "evil"}),
			parts: []string{`"etc/passwd"`},
		},
		{
			name:  "hardlink to a missing file",
			bad:   imagetest.Layer(t, imagetest.File{Name: "l", Type: tar.TypeLink, Linkname: "nowhere"}),
			parts: []string{`"l"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			s.lazy = true // Resolve unpacks
			img := imagetest.Image(t, v1.Config{}, good, tt.bad)
			save(t, s, img, "bad")
			_, err := s.Resolve(ctx, "bad")
			wantCategory(t, err, errdefs.ErrInvalid, tt.parts...)
			// Only the good base layer is there; nothing half-written.
			cfg, _ := img.ConfigFile()
			if got := layerNames(t, root); !slices.Equal(got, []string{cfg.RootFS.DiffIDs[0].Hex}) {
				t.Errorf("layers/ holds %v, want only the base layer", got)
			}
			if _, err := os.Stat(filepath.Join(root, "..", "escape")); err == nil {
				t.Error("the escaping entry was written")
			}
		})
	}
}

// lyingLayer reports a diff ID that does not match its content.
type lyingLayer struct {
	v1.Layer
	diffID v1.Hash
}

func (l lyingLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func TestResolveChecksDiffID(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	s.lazy = true // Resolve unpacks
	l := imagetest.Layer(t, imagetest.File{Name: "f", Body: "content"})
	wrong := v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	save(t, s, imagetest.Image(t, v1.Config{}, lyingLayer{l, wrong}), "liar")
	_, err := s.Resolve(ctx, "liar")
	wantCategory(t, err, errdefs.ErrInvalid, "the image config says "+wrong.String(), "corrupt")
	if got := layerNames(t, root); len(got) != 0 {
		t.Errorf("layers/ holds %v after a bad layer", got)
	}
}

func TestResolveMissingBlob(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	s.lazy = true // Resolve unpacks
	img := imagetest.RandomImage(t, 1)
	save(t, s, img, "x")
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	if err := os.Remove(filepath.Join(root, "images", "blobs", "sha256", d.Hex)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Resolve(ctx, "x")
	wantCategory(t, err, errdefs.ErrNotFound, d.String(), "missing")
}

// A Resolve in progress keeps the blobs and layer directories it uses,
// even when the image is removed and pruned while it unpacks; the next
// Prune deletes them.
func TestResolveKeepsWhatItUses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// during runs while the first layer of image "x" unpacks.
		during func(s *Store) error
	}{
		{
			name: "remove",
			during: func(s *Store) error {
				_, err := s.Remove(ctx, "x", false, nil)
				return err
			},
		},
		{
			name: "untag and prune",
			during: func(s *Store) error {
				if err := s.Tag(ctx, "other", "x"); err != nil {
					return err
				}
				_, err := s.Prune(ctx, nil)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			s.lazy = true // Resolve unpacks
			img := imagetest.RandomImage(t, 3)
			save(t, s, img, "x")
			other := save(t, s, imagetest.RandomImage(t, 1), "other")
			real := s.apply
			var once sync.Once
			var duringErr error
			s.apply = func(ctx context.Context, dir string, r io.Reader, o unpack.Options) (unpack.Stats, error) {
				once.Do(func() { duringErr = tt.during(s) })
				return real(ctx, dir, r, o)
			}
			res, err := s.Resolve(ctx, "x")
			if duringErr != nil {
				t.Fatalf("during Resolve: %v", duringErr)
			}
			if err != nil {
				t.Fatalf("Resolve while the image was removed: %v", err)
			}
			if res.ID != idOf(t, img) || len(res.Layers) != 3 {
				t.Fatalf("Resolved %s with %d layers, want %s with 3", res.ID, len(res.Layers), idOf(t, img))
			}
			for _, d := range res.Layers {
				if _, err := os.Stat(d); err != nil {
					t.Errorf("layer dir: %v", err)
				}
			}
			if _, err := s.Inspect(ctx, res.ID); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Inspect of the removed image: %v, want not found", err)
			}
			// Nothing pins the image now: Prune frees everything but "other".
			s.apply = real
			if _, err := s.Prune(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if got := layerNames(t, root); len(got) != 0 {
				t.Errorf("layers/ holds %v after the Prune", got)
			}
			if got, want := len(blobNames(t, root)), 3; got != want {
				t.Errorf("%d blobs left, want %d (manifest, config and layer of %s)", got, want, other.ID)
			}
			checkConsistent(t, root)
		})
	}
}
