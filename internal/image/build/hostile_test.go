package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// secretCanary stands for a host file (/etc/shadow) that a build context
// must never make the daemon read.
const secretCanary = "root:CANARY-HOST-SECRET:19000:0:99999:7:::"

// hostFile writes the canary outside any build context and returns its path.
func hostFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	writeFile(t, p, []byte(secretCanary+"\n"))
	return p
}

// buildWithin runs Build over dir and fails the test if it blocks.
func buildWithin(t *testing.T, dir string) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := Build(context.Background(), Options{ContextDir: dir}, testImages(t))
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the build blocked reading its context")
		return nil
	}
}

// TestBuildContextReadsStayInside: the Dockerfile, the ignore file and COPY
// sources are read inside the context, as regular files only. A context
// is uploaded by any API client and unpacked by the daemon, so a symlink
// in it must not make the daemon read (and print) its own files, and a
// FIFO or a device must not block it or fill its memory.
func TestBuildContextReadsStayInside(t *testing.T) {
	secret := hostFile(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		cat   error
		want  string // in the error
	}{
		{"Dockerfile links to a host file", func(t *testing.T, dir string) {
			symlink(t, secret, filepath.Join(dir, "Dockerfile"))
		}, errdefs.ErrNotFound, `no Dockerfile "Dockerfile" in the build context (it is a symlink to`},
		{"Dockerfile links up and out", func(t *testing.T, dir string) {
			symlink(t, "../../../../../../../.."+secret, filepath.Join(dir, "Dockerfile"))
		}, errdefs.ErrNotFound, "not in the context: symlinks resolve inside it"},
		{"Dockerfile links to /dev/zero", func(t *testing.T, dir string) {
			symlink(t, "/dev/zero", filepath.Join(dir, "Dockerfile"))
		}, errdefs.ErrNotFound, `is a symlink to "/dev/zero"`},
		{"Dockerfile is a device", func(t *testing.T, dir string) {
			if err := syscall.Mknod(filepath.Join(dir, "Dockerfile"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
				t.Fatal(err)
			}
		}, errdefs.ErrInvalid, "reading the Dockerfile: Dockerfile is a character device, not a regular file"},
		{"Dockerfile is a FIFO", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "Dockerfile"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, errdefs.ErrInvalid, "reading the Dockerfile: Dockerfile is a named pipe (FIFO), not a regular file"},
		{"Dockerfile is huge", func(t *testing.T, dir string) {
			f, err := os.Create(filepath.Join(dir, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(1 << 30)
			f.Close()
		}, errdefs.ErrInvalid, "Dockerfile is larger than the limit of 4 MiB"},
		{".dockerignore is a FIFO", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"))
			if err := syscall.Mkfifo(filepath.Join(dir, ".dockerignore"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, errdefs.ErrInvalid, "reading the ignore file: .dockerignore is a named pipe (FIFO), not a regular file"},
		{"COPY of a symlink to a host file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY shadow /shadow\n"))
			symlink(t, secret, filepath.Join(dir, "shadow"))
		}, errdefs.ErrNotFound, `"shadow" is a symlink to`},
		{"COPY through a symlinked directory", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY etc/shadow /shadow\n"))
			symlink(t, filepath.Dir(secret), filepath.Join(dir, "etc"))
		}, errdefs.ErrNotFound, `"etc/shadow" was not found in the build context`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			err := buildWithin(t, dir)
			if err == nil {
				t.Fatal("the build succeeded")
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Fatalf("the error shows a host file's content: %v", err)
			}
			if !errors.Is(err, tc.cat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q (%v), want %v saying %q", err, errdefs.Category(err), tc.cat, tc.want)
			}
			if strings.Contains(err.Error(), dir) {
				t.Errorf("the error shows the context's path on disk: %v", err)
			}
		})
	}
}

// TestDockerignoreLinkStaysInside: a .dockerignore that links out of the
// context is not read; one that links inside it is.
func TestDockerignoreLinkStaysInside(t *testing.T) {
	secret := hostFile(t)
	dir := writeContext(t, "FROM scratch\n", map[string]string{"rules": "*.log\n"})
	symlink(t, secret, filepath.Join(dir, ".dockerignore"))
	cx, err := openContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if cx.HasRules() {
		t.Fatalf("patterns were read through a link out of the context: %v", cx.IgnoreFile)
	}
	os.Remove(filepath.Join(dir, ".dockerignore"))
	symlink(t, "/rules", filepath.Join(dir, ".dockerignore"))
	if cx, err = openContext(dir, ""); err != nil {
		t.Fatal(err)
	}
	if !cx.HasRules() || !cx.Ignored("a.log") {
		t.Fatal("a .dockerignore linking inside the context was not used")
	}
}

// TestDockerfileLinkInside: a Dockerfile that links to another file of the
// context is followed, as with docker.
func TestDockerfileLinkInside(t *testing.T) {
	dir := writeContext(t, "", map[string]string{"build/real.Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a"})
	symlink(t, "/build/real.Dockerfile", filepath.Join(dir, "Dockerfile"))
	if err := buildWithin(t, dir); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
