package inroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// canary is content that lives only outside the roots under test.
const canary = "CANARY-outside-the-root"

// hostile makes a root holding one entry of every kind ReadFile must
// refuse or confine, and a canary file beside (outside) it.
func hostile(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "secret")
	must(t, os.WriteFile(outside, []byte(canary+"\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(t, unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(root, "etc/abs-out")))
	must(t, os.Symlink("../../secret", filepath.Join(root, "etc/rel-out")))
	must(t, os.Symlink("passwd", filepath.Join(root, "etc/in")))
	must(t, os.Symlink("/proc/self/root"+outside, filepath.Join(root, "etc/magic")))
	// A character device like /dev/zero (1, 5): reading it never ends.
	must(t, unix.Mknod(filepath.Join(root, "etc/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
	big, err := os.Create(filepath.Join(root, "etc/big"))
	must(t, err)
	must(t, big.Truncate(1<<30))
	big.Close()
	return root, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadFile(t *testing.T) {
	root, _ := hostile(t)
	for _, tc := range []struct {
		name, want string // want: content, or else an error substring
		cat        error
	}{
		{"etc/passwd", "root:x:0:0", nil},
		{"/etc/passwd", "root:x:0:0", nil},
		{"/etc/in", "root:x:0:0", nil},
		{"../../etc/passwd", "root:x:0:0", nil},
		{"/etc/fifo", "/etc/fifo is a named pipe (FIFO), not a regular file", errdefs.ErrInvalid},
		{"etc/fifo", "etc/fifo is a named pipe (FIFO), not a regular file", errdefs.ErrInvalid},
		{"/etc/zero", "/etc/zero is a character device, not a regular file", errdefs.ErrInvalid},
		{"/etc", "/etc is a directory, not a regular file", errdefs.ErrInvalid},
		{"/etc/big", "/etc/big is larger than the limit of 4 MiB", errdefs.ErrInvalid},
		{"/etc/abs-out", "/etc/abs-out does not exist", errdefs.ErrNotFound},
		{"/etc/rel-out", "/etc/rel-out does not exist", errdefs.ErrNotFound},
		{"/etc/magic", "/etc/magic", nil},
		{"/etc/missing", "/etc/missing does not exist", errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var data []byte
			var err error
			go func() {
				defer close(done)
				data, err = ReadFile(root, tc.name, 4<<20)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFile blocked")
			}
			if strings.Contains(string(data), canary) || (err != nil && strings.Contains(err.Error(), canary)) {
				t.Fatalf("read the file outside the root: %q, %v", data, err)
			}
			if err != nil && strings.Contains(err.Error(), root) {
				t.Errorf("error shows the root's host path: %v", err)
			}
			if tc.cat == nil && tc.name != "/etc/magic" {
				if err != nil || !strings.Contains(string(data), tc.want) {
					t.Fatalf("got %q, %v; want %q", data, err, tc.want)
				}
				return
			}
			if err == nil {
				if tc.name == "/etc/magic" {
					t.Fatalf("a magic link was followed: %q", data)
				}
				t.Fatalf("got %q, want an error %q", data, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if tc.cat != nil && !errors.Is(err, tc.cat) {
				t.Errorf("error %v is not %v", err, tc.cat)
			}
			if tc.cat == errdefs.ErrNotFound && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not match fs.ErrNotExist", err)
			}
		})
	}
}

// TestReadFileLimitExact: the limit is inclusive; a negative one is none.
func TestReadFileLimitExact(t *testing.T) {
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("12345"), 0o644))
	if _, err := ReadFile(root, "f", 5); err != nil {
		t.Fatalf("a file of exactly the limit: %v", err)
	}
	if _, err := ReadFile(root, "f", 4); err == nil || !strings.Contains(err.Error(), "larger than the limit of 4 bytes") {
		t.Fatalf("a file over the limit: %v", err)
	}
	if data, err := ReadFile(root, "f", -1); err != nil || string(data) != "12345" {
		t.Fatalf("no limit: %q, %v", data, err)
	}
}

func TestOpenMissingRoot(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "nope"), "etc/passwd", 10)
	if err == nil {
		t.Fatal("a missing root was read")
	}
}

func TestExists(t *testing.T) {
	root, _ := hostile(t)
	for name, want := range map[string]bool{
		"/etc/passwd": true, "/etc/fifo": true, "/etc/abs-out": true, "/etc": true,
		"/etc/missing": false, "/etc/abs-out/x": false, "/secret": false,
	} {
		if got := Exists(root, name); got != want {
			t.Errorf("Exists(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestReadlink(t *testing.T) {
	root, outside := hostile(t)
	if target, ok := Readlink(root, "/etc/abs-out"); !ok || target != outside {
		t.Errorf("Readlink(/etc/abs-out) = %q, %v; want %q", target, ok, outside)
	}
	for _, name := range []string{"/etc/passwd", "/etc/missing", "/etc/abs-out/x"} {
		if target, ok := Readlink(root, name); ok {
			t.Errorf("Readlink(%s) = %q, want no link", name, target)
		}
	}
	// A link met on the way is resolved inside the root, not on the host.
	must(t, os.Symlink(filepath.Dir(outside), filepath.Join(root, "up")))
	must(t, os.Symlink("/anywhere", filepath.Join(filepath.Dir(outside), "hostlink")))
	if target, ok := Readlink(root, "/up/hostlink"); ok {
		t.Errorf("Readlink went through a link out of the root: %q", target)
	}
}
