package build

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// tarNames lists a tar stream's entry names and closes it.
func tarNames(t *testing.T, rc io.ReadCloser) []string {
	t.Helper()
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

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

func TestContextTar(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		dockerfile string
		want       []string
	}{
		{
			name:  "no ignore file",
			files: map[string]string{"Dockerfile": "FROM scratch\n", "a/b.txt": "b", "c": "c"},
			want:  []string{"Dockerfile", "a/", "a/b.txt", "c"},
		},
		{
			name: "dockerignore",
			files: map[string]string{
				"Dockerfile": "FROM scratch\n", ".dockerignore": "*.log\n!keep.log\nsecret\nbuild\n!build/keep\n",
				"x.log": "", "keep.log": "", "secret/key": "", "build/out": "", "build/keep": "", "src/main.c": "",
			},
			want: []string{".dockerignore", "Dockerfile", "build/", "build/keep", "keep.log", "src/", "src/main.c"},
		},
		{
			name: "Dockerfile and .dockerignore always sent",
			files: map[string]string{
				"Dockerfile": "FROM scratch\n", ".dockerignore": "*\n!app\n", "app": "", "other": "",
			},
			want: []string{"app", "Dockerfile", ".dockerignore"},
		},
		{
			name: "Dockerfile elsewhere with its own ignore file",
			files: map[string]string{
				"ci/app.Dockerfile": "FROM scratch\n", "ci/app.Dockerfile.dockerignore": "ci\n", ".dockerignore": "src\n",
				"src/a": "", "ci/other": "",
			},
			dockerfile: "ci/app.Dockerfile",
			want:       []string{".dockerignore", "src/", "src/a", "ci/app.Dockerfile", "ci/app.Dockerfile.dockerignore"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, "", tc.files)
			rc, err := ContextTar(dir, tc.dockerfile)
			if err != nil {
				t.Fatal(err)
			}
			if got := tarNames(t, rc); !slices.Equal(got, tc.want) {
				t.Errorf("entries %q, want %q", got, tc.want)
			}
		})
	}
}

func TestContextTarErrors(t *testing.T) {
	dir := writeContext(t, "FROM scratch\n", nil)
	bad := writeContext(t, "FROM scratch\n", map[string]string{".dockerignore": "!\n"})
	tests := []struct {
		name            string
		dir, dockerfile string
		cat             error
		want            string
	}{
		{"no such directory", filepath.Join(dir, "nope"), "", errdefs.ErrNotFound, "does not exist"},
		{"not a directory", filepath.Join(dir, "Dockerfile"), "", errdefs.ErrInvalid, "is not a directory"},
		{"no Dockerfile", dir, "other.Dockerfile", errdefs.ErrNotFound, "no Dockerfile \"other.Dockerfile\" in the build context"},
		{"Dockerfile outside", dir, "../Dockerfile", errdefs.ErrInvalid, "is outside the build context"},
		{"empty dir", "", "", errdefs.ErrInvalid, "no build context directory"},
		{"bad ignore pattern", bad, "", errdefs.ErrInvalid, ".dockerignore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := ContextTar(tc.dir, tc.dockerfile)
			if err == nil {
				rc.Close()
				t.Fatal("ContextTar succeeded")
			}
			if !errors.Is(err, tc.cat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (%v), want %v containing %q", err, errdefs.Category(err), tc.cat, tc.want)
			}
		})
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
			rc, err := ContextTar(src, "")
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

// TestContextTarClose checks closing the stream early stops the writer.
func TestContextTarClose(t *testing.T) {
	dir := writeContext(t, "FROM scratch\n", map[string]string{"big": strings.Repeat("x", 1<<20)})
	rc, err := ContextTar(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
}
