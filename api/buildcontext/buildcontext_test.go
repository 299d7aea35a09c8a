package buildcontext

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

// writeContext writes a context directory: files by relative path, and
// a Dockerfile when dockerfile is not empty.
func writeContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if dockerfile != "" {
		files["Dockerfile"] = dockerfile
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

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

func TestTar(t *testing.T) {
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
			rc, err := Tar(dir, tc.dockerfile)
			if err != nil {
				t.Fatal(err)
			}
			if got := tarNames(t, rc); !slices.Equal(got, tc.want) {
				t.Errorf("entries %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTarErrors(t *testing.T) {
	dir := writeContext(t, "FROM scratch\n", map[string]string{})
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
			rc, err := Tar(tc.dir, tc.dockerfile)
			if err == nil {
				rc.Close()
				t.Fatal("Tar succeeded")
			}
			if !errors.Is(err, tc.cat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (%v), want %v containing %q", err, errdefs.Category(err), tc.cat, tc.want)
			}
		})
	}
}

// TestTarClose checks closing the stream early stops the writer.
func TestTarClose(t *testing.T) {
	dir := writeContext(t, "FROM scratch\n", map[string]string{"big": strings.Repeat("x", 1<<20)})
	rc, err := Tar(dir, "")
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
