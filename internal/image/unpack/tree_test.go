package unpack

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// treeNode is what the tests compare of one node of an unpacked tree.
type treeNode struct {
	rel     string
	st      unix.Stat_t
	target  string // symlink target
	content string // file content when short, else its sha256
	xattrs  []xattr
}

// line describes the node in one line: path, type, mode, owner and what
// the type adds (content, link target, device number, link count), then
// the xattrs.
func (n *treeNode) line() string {
	var b strings.Builder
	perm := n.st.Mode & 0o7777
	owner := fmt.Sprintf("%d:%d", n.st.Uid, n.st.Gid)
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fmt.Fprintf(&b, "%s/ dir %04o %s", n.rel, perm, owner)
	case unix.S_IFREG:
		fmt.Fprintf(&b, "%s file %04o %s %s", n.rel, perm, owner, n.content)
	case unix.S_IFLNK:
		fmt.Fprintf(&b, "%s -> %s %s", n.rel, n.target, owner)
	case unix.S_IFIFO:
		fmt.Fprintf(&b, "%s fifo %04o %s", n.rel, perm, owner)
	case unix.S_IFCHR, unix.S_IFBLK:
		kind := "char"
		if n.st.Mode&unix.S_IFMT == unix.S_IFBLK {
			kind = "block"
		}
		fmt.Fprintf(&b, "%s %s %04o %s %d/%d", n.rel, kind, perm, owner, unix.Major(n.st.Rdev), unix.Minor(n.st.Rdev))
	default:
		fmt.Fprintf(&b, "%s type %o", n.rel, n.st.Mode&unix.S_IFMT)
	}
	if n.st.Nlink > 1 && n.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		fmt.Fprintf(&b, " links=%d", n.st.Nlink)
	}
	for _, x := range n.xattrs {
		fmt.Fprintf(&b, " %s=%q", x.name, x.value)
	}
	return b.String()
}

// readTree lists every node below root (root excluded), sorted by path.
// It works with descriptors, so paths longer than PATH_MAX are fine.
func readTree(t testing.TB, root string) []treeNode {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	defer unix.Close(fd)
	var nodes []treeNode
	if err := walkAt(fd, "", &nodes); err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	slices.SortFunc(nodes, func(a, b treeNode) int { return strings.Compare(a.rel, b.rel) })
	return nodes
}

func walkAt(dirfd int, prefix string, nodes *[]treeNode) error {
	names, err := readNames(dirfd)
	if err != nil {
		return err
	}
	for _, name := range names {
		n := treeNode{rel: prefix + name}
		if err := unix.Fstatat(dirfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		xs, err := listAllXattrs(nodePath(dirfd, name))
		if err != nil {
			return fmt.Errorf("xattrs of %s: %w", n.rel, err)
		}
		n.xattrs = xs
		switch n.st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			buf := make([]byte, 8192)
			size, err := unix.Readlinkat(dirfd, name, buf)
			if err != nil {
				return err
			}
			n.target = string(buf[:size])
		case unix.S_IFREG:
			if n.content, err = contentAt(dirfd, name); err != nil {
				return fmt.Errorf("read %s: %w", n.rel, err)
			}
		}
		*nodes = append(*nodes, n)
		if n.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			child, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			err = walkAt(child, n.rel+"/", nodes)
			unix.Close(child)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// contentAt returns the quoted content of a short file, else its sha256.
func contentAt(dirfd int, name string) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	h := sha256.New()
	var head []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if len(head) <= 64 {
			head = append(head, buf[:min(n, 65)]...)
		}
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if len(head) <= 64 {
		return fmt.Sprintf("%q", head), nil
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

// listAllXattrs lists every xattr of the node at p, not followed, sorted.
func listAllXattrs(p string) ([]xattr, error) {
	buf := make([]byte, 64<<10)
	size, err := unix.Llistxattr(p, buf)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	var xs []xattr
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		val := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, err
		}
		xs = append(xs, xattr{name: name, value: string(val[:n])})
	}
	slices.SortFunc(xs, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return xs, nil
}

// treeLines describes the tree below root, one line per node.
func treeLines(t testing.TB, root string) []string {
	t.Helper()
	var lines []string
	for _, n := range readTree(t, root) {
		lines = append(lines, n.line())
	}
	return lines
}

// diffLines reports the lines only in want and only in got.
func diffLines(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "\n  missing: %s", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "\n  unexpected: %s", l)
		}
	}
	return b.String()
}
