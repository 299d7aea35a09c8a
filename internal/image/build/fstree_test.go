package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"slices"
	"testing"
)

// testTree is a small filesystem with symlinks in the awkward places.
func testTree(t *testing.T) *fsTree {
	t.Helper()
	tr := newTree()
	layer := makeTar(t, []tarEntry{
		{name: "usr/lib/libc.so", body: "libc"},
		{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		{name: "abs", typ: tar.TypeSymlink, link: "/usr/lib/libc.so"},
		{name: "escape", typ: tar.TypeSymlink, link: "../../../../usr"},
		{name: "loop1", typ: tar.TypeSymlink, link: "loop2"},
		{name: "loop2", typ: tar.TypeSymlink, link: "loop1"},
		{name: "file", body: "f"},
		{name: "dir/a.txt", body: "a"},
		{name: "dir/b.txt", body: "b"},
		{name: "dir/sub/c.txt", body: "c"},
	})
	if err := tr.applyLayer(bytes.NewReader(layer), nil, 1); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTreeLookup(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		path   string
		follow bool
		real   string
		typ    byte
		err    error
	}{
		{path: "/usr/lib/libc.so", follow: true, real: "/usr/lib/libc.so", typ: tar.TypeReg},
		{path: "/lib/libc.so", follow: true, real: "/usr/lib/libc.so", typ: tar.TypeReg},
		{path: "/lib", follow: false, real: "/lib", typ: tar.TypeSymlink},
		{path: "/lib", follow: true, real: "/usr/lib", typ: tar.TypeDir},
		{path: "/abs", follow: true, real: "/usr/lib/libc.so", typ: tar.TypeReg},
		{path: "/escape/lib/libc.so", follow: true, real: "/usr/lib/libc.so", typ: tar.TypeReg},
		{path: "/../../dir/../file", follow: true, real: "/file", typ: tar.TypeReg},
		// ".." after a symlink goes to the target's parent, as in the kernel.
		{path: "/lib/../lib/libc.so", follow: true, real: "/usr/lib/libc.so", typ: tar.TypeReg},
		{path: "/lib/../file", follow: true, err: errNotExist},
		{path: "/loop1", follow: true, err: errLoop},
		{path: "/loop1", follow: false, real: "/loop1", typ: tar.TypeSymlink},
		{path: "/file/x", follow: true, err: errNotDir},
		{path: "/nope", follow: true, err: errNotExist},
	}
	for _, tc := range tests {
		n, real, err := tr.lookup(tc.path, tc.follow)
		if !errors.Is(err, tc.err) {
			t.Errorf("lookup(%q, %v) error %v, want %v", tc.path, tc.follow, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if real != tc.real || n.typ != tc.typ {
			t.Errorf("lookup(%q, %v) = %q type %c, want %q type %c", tc.path, tc.follow, real, n.typ, tc.real, tc.typ)
		}
	}
}

func TestTreeGlob(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		pattern string
		want    []string
	}{
		{"/dir/*.txt", []string{"dir/a.txt", "dir/b.txt"}},
		{"/dir/*/c.txt", []string{"dir/sub/c.txt"}},
		{"/lib/*.so", []string{"lib/libc.so"}},
		{"/d?r", []string{"dir"}},
		{"/dir/[ab].txt", []string{"dir/a.txt", "dir/b.txt"}},
		{"/nothing*", []string{}},
		{"/file/*", []string{}},
	}
	for _, tc := range tests {
		got, err := tr.glob(tc.pattern)
		if err != nil {
			t.Errorf("glob(%q): %v", tc.pattern, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("glob(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
	if _, err := tr.glob("/dir/[.txt"); err == nil {
		t.Errorf("glob of a malformed pattern succeeded")
	}
}

// TestTreeApplyLayer checks whiteouts, opaque directories and hard links
// are applied like an OCI unpacker applies them.
func TestTreeApplyLayer(t *testing.T) {
	tr := testTree(t)
	upper := makeTar(t, []tarEntry{
		{name: "dir/", typ: tar.TypeDir, mode: 0o700},
		{name: "dir/.wh..wh..opq"},
		{name: "dir/new.txt", body: "new"},
		{name: ".wh.file"},
		{name: "hard", typ: tar.TypeLink, link: "usr/lib/libc.so"},
	})
	if err := tr.applyLayer(bytes.NewReader(upper), nil, 2); err != nil {
		t.Fatal(err)
	}
	if got := sortedNames(tr.literal("/dir")); !slices.Equal(got, []string{"new.txt"}) {
		t.Errorf("dir holds %q after an opaque whiteout, want only new.txt", got)
	}
	if tr.literal("/dir").mode != 0o700 {
		t.Errorf("dir mode %o, want 700", tr.literal("/dir").mode)
	}
	if tr.literal("/file") != nil {
		t.Errorf("/file survived its whiteout")
	}
	hard := tr.literal("/hard")
	if hard == nil || hard.typ != tar.TypeReg || hard.data != tr.literal("/usr/lib/libc.so").data {
		t.Errorf("hard link not resolved to its target's content: %+v", hard)
	}
}
