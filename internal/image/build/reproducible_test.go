package build

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// setMtimes gives every entry under dir the time tm.
func setMtimes(t *testing.T, dir string, tm time.Time) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, tm, tm)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// layerMtimes returns the mtime of every entry of every layer the build wrote.
func layerMtimes(t *testing.T, img v1.Image, from int) map[string]time.Time {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, l := range layers[from:] {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = h.ModTime.UTC()
		}
		rc.Close()
	}
	return out
}

// TestBuildReproducible checks that the same inputs give the same digest,
// for every golden case and across separate builds.
func TestBuildReproducible(t *testing.T) {
	images := testImages(t)
	for _, tc := range goldenCases {
		if tc.name == "random-base" {
			continue // random.Image differs per test run, not per build
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := copyCase(t, tc.name)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			opts := Options{ContextDir: dir, BuildArgs: tc.args, Target: tc.target, Platform: tc.platform}
			first, err := Build(context.Background(), opts, images)
			if err != nil {
				t.Fatal(err)
			}
			second, err := Build(context.Background(), opts, images)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := digestOf(t, first), digestOf(t, second); a != b {
				t.Errorf("two builds of the same context: %s and %s", a, b)
			}
		})
	}
}

// TestBuildMtimes checks mtimes are kept, the creation time follows them,
// and SOURCE_DATE_EPOCH makes fresh checkouts build the same image.
func TestBuildMtimes(t *testing.T) {
	ctx := context.Background()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	newer := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	epoch := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

	build := func(t *testing.T, dir string, args map[string]string) v1.Image {
		t.Helper()
		img, err := Build(ctx, Options{ContextDir: dir, BuildArgs: args}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	checkout := func(t *testing.T, tm time.Time) string {
		dir := copyCase(t, "chown-chmod")
		writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY dir /app/\nCOPY a.txt /deep/new/a.txt\n"))
		setMtimes(t, dir, tm)
		return dir
	}

	t.Run("mtimes kept", func(t *testing.T) {
		dir := checkout(t, old)
		img := build(t, dir, nil)
		got := layerMtimes(t, img, 0)
		if !got["app/b.txt"].Equal(old) || !got["app/sub/"].Equal(old) || !got["app/"].Equal(old) {
			t.Errorf("copied entries: %v, want %v", got, old)
		}
		if !got["deep/"].Equal(time.Unix(0, 0)) {
			t.Errorf("created parent mtime %v, want the Unix epoch", got["deep/"])
		}
		cfg, _ := img.ConfigFile()
		if !cfg.Created.Time.Equal(old) || !cfg.History[0].Created.Time.Equal(old) {
			t.Errorf("created %v, history %v, want the newest mtime %v", cfg.Created, cfg.History[0].Created, old)
		}
	})
	t.Run("an mtime is an input", func(t *testing.T) {
		dir := checkout(t, old)
		a := digestOf(t, build(t, dir, nil))
		if err := os.Chtimes(filepath.Join(dir, "dir", "b.txt"), newer, newer); err != nil {
			t.Fatal(err)
		}
		if b := digestOf(t, build(t, dir, nil)); a == b {
			t.Errorf("touching a copied file kept the digest %s", a)
		}
	})
	t.Run("SOURCE_DATE_EPOCH", func(t *testing.T) {
		args := map[string]string{"SOURCE_DATE_EPOCH": strconv.FormatInt(epoch.Unix(), 10)}
		one := build(t, checkout(t, newer), args)
		two := build(t, checkout(t, newer.Add(48*time.Hour)), args)
		if a, b := digestOf(t, one), digestOf(t, two); a != b {
			t.Errorf("two checkouts with SOURCE_DATE_EPOCH: %s and %s", a, b)
		}
		for name, tm := range layerMtimes(t, one, 0) {
			if !tm.Equal(epoch) {
				t.Errorf("%s mtime %v, want it clamped to %v", name, tm, epoch)
			}
		}
		cfg, _ := one.ConfigFile()
		if !cfg.Created.Time.Equal(epoch) {
			t.Errorf("created %v, want %v", cfg.Created, epoch)
		}
		// Older files keep their mtime.
		three := build(t, checkout(t, old), args)
		if got := layerMtimes(t, three, 0)["app/b.txt"]; !got.Equal(old) {
			t.Errorf("older mtime became %v, want %v kept", got, old)
		}
	})
}
