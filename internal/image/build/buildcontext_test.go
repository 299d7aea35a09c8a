package build

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"skiff.dev/skiff/api/buildcontext"
)

// untar extracts a context tar into dir, as the daemon does.
func untar(t *testing.T, rc io.ReadCloser, dir string) {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	var dirs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, h)
			continue
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
			os.Chmod(p, os.FileMode(h.Mode))
		}
		os.Chtimes(p, h.ModTime, h.ModTime)
	}
	for _, h := range dirs {
		os.Chtimes(filepath.Join(dir, h.Name), h.ModTime, h.ModTime)
	}
}

// TestContextTarRoundTrip checks the CLI-to-daemon path: building from
// the extracted context tar gives the image a local build gives.
func TestContextTarRoundTrip(t *testing.T) {
	images := testImages(t)
	for _, name := range []string{"dockerignore", "symlinks", "wildcard", "chown-chmod"} {
		t.Run(name, func(t *testing.T) {
			src := copyCase(t, name)
			setMtimes(t, src, time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC))
			local, err := Build(context.Background(), Options{ContextDir: src}, images)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := buildcontext.Tar(src, "")
			if err != nil {
				t.Fatal(err)
			}
			dst := t.TempDir()
			untar(t, rc, dst)
			os.Chtimes(dst, time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC), time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC))
			remote, err := Build(context.Background(), Options{ContextDir: dst}, images)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := digestOf(t, local), digestOf(t, remote); a != b {
				t.Errorf("local build %s, build from the context tar %s", a, b)
			}
		})
	}
}
