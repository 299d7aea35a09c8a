package daemon

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// someGroup returns a group of the host other than root's: its name and
// gid.
func someGroup(t *testing.T) (string, int) {
	t.Helper()
	f, err := os.Open("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if gid, err := strconv.Atoi(fields[2]); err == nil && gid != 0 {
			return fields[0], gid
		}
	}
	t.Fatal("/etc/group holds no group but root")
	return "", 0
}

// dirEvents is what inotify saw happen in a directory, by file name.
type dirEvents map[string]uint32

func watchDir(t *testing.T, dir string) func() dirEvents {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	return func() dirEvents {
		ev := dirEvents{}
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EAGAIN) {
				return ev
			}
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+nameLen], "\x00"))
				ev[name] |= mask
				off += unix.SizeofInotifyEvent + nameLen
			}
		}
	}
}

// TestListenSocketMode checks that the API socket appears at its path
// already with mode 0660 and its group: it is moved there, never created
// there (a socket created at the path would exist with the umask's mode
// until a chmod, and anyone could connect in between).
func TestListenSocketMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "skiff.sock")
	group, gid := someGroup(t)
	events := watchDir(t, dir)
	old := syscall.Umask(0) // the loosest umask: it must not matter
	l, err := listen(path, group)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o7777 != 0o660 || int(st.Gid) != gid {
		t.Errorf("socket mode %o, gid %d; want a socket, 0660, gid %d (%s)", st.Mode, st.Gid, gid, group)
	}
	ev := events()
	if ev["skiff.sock"]&unix.IN_CREATE != 0 || ev["skiff.sock"]&unix.IN_MOVED_TO == 0 {
		t.Errorf("the socket was created at its path instead of moved there (inotify mask %#x)", ev["skiff.sock"])
	}
	for name, mask := range ev {
		if name != "skiff.sock" && mask&unix.IN_ISDIR == 0 {
			t.Errorf("unexpected file %s made beside the socket", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the socket", len(entries))
	}

	// It answers; a second daemon on the same path is refused.
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := listen(path, group); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("a second listen on a live socket: %v, want a conflict", err)
	}
	// A stale socket (the daemon died) is replaced.
	l.Close()
	l2, err := listen(path, "no-such-group-here")
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	defer l2.Close()
	if err := unix.Lstat(path, &st); err != nil || st.Mode&0o7777 != 0o660 || st.Gid != 0 {
		t.Errorf("socket without the group: mode %o gid %d, %v; want 0660, gid 0", st.Mode, st.Gid, err)
	}
}
