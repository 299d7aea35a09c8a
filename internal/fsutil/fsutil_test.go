package fsutil

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "index.json")
	for i, durable := range []bool{false, true} {
		want := strings.Repeat("x", i+1)
		if err := WriteFileAtomic(p, []byte(want), 0o640, durable); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("durable=%v: read %q, %v; want %q", durable, got, err, want)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v, want 0640", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left in the directory: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644, true); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
}

func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.MkdirAll(filepath.Join(src, "conf", "sub"), 0o750)
	os.WriteFile(filepath.Join(src, "conf", "sub", "app.conf"), []byte("key=1\n"), 0o755)
	os.Chmod(filepath.Join(src, "conf", "sub", "app.conf"), 0o755|os.ModeSetuid)
	os.Chtimes(filepath.Join(src, "conf", "sub", "app.conf"), mtime, mtime)
	os.Lchown(filepath.Join(src, "conf"), 1000, 1001)
	os.Symlink("/etc/passwd", filepath.Join(src, "conf", "link"))
	syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644)
	os.Chmod(src, 0o711)

	if err := CopyTree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dst, "conf", "sub", "app.conf"))
	if err != nil || string(b) != "key=1\n" {
		t.Fatalf("file: %q %v", b, err)
	}
	fi, _ := os.Lstat(filepath.Join(dst, "conf", "sub", "app.conf"))
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("file mode %v, mtime %v", fi.Mode(), fi.ModTime())
	}
	st, _ := os.Lstat(filepath.Join(dst, "conf"))
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 1000 || s.Gid != 1001 || st.Mode().Perm() != 0o750 {
		t.Fatalf("directory owner %d:%d mode %v", s.Uid, s.Gid, st.Mode().Perm())
	}
	if l, err := os.Readlink(filepath.Join(dst, "conf", "link")); err != nil || l != "/etc/passwd" {
		t.Fatalf("symlink %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "fifo")); !os.IsNotExist(err) {
		t.Fatalf("the FIFO was copied: %v", err)
	}
	if root, _ := os.Stat(dst); root.Mode().Perm() != 0o711 {
		t.Fatalf("dst mode %v, want src's 0711", root.Mode().Perm())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := CopyTree(ctx, src, t.TempDir()); err == nil {
		t.Fatal("a cancelled copy succeeded")
	}
}
