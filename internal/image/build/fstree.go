package build

import (
	"archive/tar"
	"errors"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// maxSymlinks bounds the symlinks followed while resolving one path, as
// Linux's MAXSYMLINKS does.
const maxSymlinks = 40

// Errors of path resolution inside a tree. Callers turn them into
// user-facing errors naming the instruction.
var (
	errNotExist = errors.New("no such file or directory")
	errNotDir   = errors.New("not a directory")
	errLoop     = errors.New("too many levels of symbolic links")
)

// node is one entry of an in-memory filesystem: the metadata a layer tar
// entry carries, the source of a regular file's bytes and, for a
// directory, its children.
type node struct {
	typ      byte  // tar.TypeReg, TypeDir, TypeSymlink, TypeChar, TypeBlock or TypeFifo
	mode     int64 // permission bits plus setuid, setgid and sticky (07777)
	uid, gid int
	mtime    time.Time
	size     int64
	link     string // symlink target
	devMajor int64
	devMinor int64
	pax      map[string]string // SCHILY.xattr.* records
	data     content           // regular files only
	children map[string]*node  // directories only
	// gen is the layer generation that last wrote this node; the layer
	// being written holds exactly the nodes of its generation.
	gen int
}

func (n *node) isDir() bool { return n.typ == tar.TypeDir }

// clone copies n and, for a directory, its whole subtree.
func (n *node) clone() *node {
	c := *n
	c.pax = maps.Clone(n.pax)
	if n.children != nil {
		c.children = make(map[string]*node, len(n.children))
		for k, v := range n.children {
			c.children[k] = v.clone()
		}
	}
	return &c
}

// header returns the tar header of n at name.
func (n *node) header(name string) *tar.Header {
	h := &tar.Header{
		Typeflag: n.typ,
		Name:     name,
		Mode:     n.mode,
		Uid:      n.uid,
		Gid:      n.gid,
		ModTime:  n.mtime,
		Linkname: n.link,
		Devmajor: n.devMajor,
		Devminor: n.devMinor,
	}
	if n.typ == tar.TypeReg {
		h.Size = n.size
	}
	if n.typ == tar.TypeDir && !strings.HasSuffix(name, "/") {
		h.Name += "/"
	}
	if len(n.pax) > 0 {
		h.PAXRecords = maps.Clone(n.pax)
	}
	return h
}

// nodeFromHeader returns the node a tar header describes, or nil for the
// entry types a filesystem view does not keep (hard links are resolved by
// the caller).
func nodeFromHeader(h *tar.Header) *node {
	n := &node{
		typ:   h.Typeflag,
		mode:  h.Mode & 07777,
		uid:   h.Uid,
		gid:   h.Gid,
		mtime: h.ModTime.Truncate(time.Second),
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		n.typ = tar.TypeReg
		n.size = h.Size
	case tar.TypeDir:
		n.children = map[string]*node{}
	case tar.TypeSymlink:
		n.link = h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		n.devMajor, n.devMinor = h.Devmajor, h.Devminor
	case tar.TypeFifo:
	default:
		return nil
	}
	n.pax = xattrRecords(h.PAXRecords)
	return n
}

// xattrRecords returns the extended attributes among a header's PAX
// records (SCHILY.xattr.*), or nil when it has none.
func xattrRecords(pax map[string]string) map[string]string {
	var out map[string]string
	for k, v := range pax {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// fsTree is an in-memory view of a root filesystem: metadata for every
// entry, and where to read each regular file's bytes.
type fsTree struct {
	root *node
}

func newTree() *fsTree {
	return &fsTree{root: &node{typ: tar.TypeDir, mode: 0o755, children: map[string]*node{}}}
}

func (t *fsTree) clone() *fsTree { return &fsTree{root: t.root.clone()} }

// splitPath splits a slash path into its non-empty, non-"." components.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// walker resolves paths inside a tree like the kernel resolves them under
// a chroot: ".." stops at the root and absolute symlinks start again from
// the root, so nothing resolves outside the tree.
type walker struct {
	t     *fsTree
	stack []*node  // nodes from the root to the current directory
	names []string // names of stack[1:]
	hops  int
}

func (t *fsTree) walker() *walker { return &walker{t: t, stack: []*node{t.root}} }

func (w *walker) cur() *node { return w.stack[len(w.stack)-1] }

// realPath is the symlink-free absolute path of the current directory.
func (w *walker) realPath() string { return "/" + strings.Join(w.names, "/") }

// step moves into component c of the current directory. A symlink is
// followed unless it is the last component and !follow; mkdir, when set,
// creates a missing component as a directory.
func (w *walker) walk(comps []string, follow bool, mkdir func() *node) (*node, error) {
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		if c == ".." {
			if len(w.stack) > 1 {
				w.stack = w.stack[:len(w.stack)-1]
				w.names = w.names[:len(w.names)-1]
			}
			continue
		}
		dir := w.cur()
		if !dir.isDir() {
			return nil, errNotDir
		}
		child := dir.children[c]
		if child == nil {
			if mkdir == nil {
				return nil, errNotExist
			}
			child = mkdir()
			dir.children[c] = child
		}
		if child.typ == tar.TypeSymlink && (len(comps) > 0 || follow) {
			w.hops++
			if w.hops > maxSymlinks {
				return nil, errLoop
			}
			if strings.HasPrefix(child.link, "/") {
				w.stack = w.stack[:1]
				w.names = w.names[:0]
			}
			comps = append(splitPath(child.link), comps...)
			continue
		}
		w.stack = append(w.stack, child)
		w.names = append(w.names, c)
		if len(comps) > 0 && !child.isDir() {
			return nil, errNotDir
		}
	}
	return w.cur(), nil
}

// lookup resolves p, following symlinks in every component and, when
// follow is set, in the last one. It returns the node and its real path.
func (t *fsTree) lookup(p string, follow bool) (*node, string, error) {
	w := t.walker()
	n, err := w.walk(splitPath(p), follow, nil)
	if err != nil {
		return nil, "", err
	}
	return n, w.realPath(), nil
}

// mkdirAll resolves directory p, creating the missing components with
// mk, and returns the directory and its real path.
func (t *fsTree) mkdirAll(p string, mk func() *node) (*node, string, error) {
	w := t.walker()
	n, err := w.walk(splitPath(p), true, mk)
	if err != nil {
		return nil, "", err
	}
	if !n.isDir() {
		return nil, "", errNotDir
	}
	return n, w.realPath(), nil
}

// glob returns the paths, relative to the root and sorted, that match
// pattern component by component with path.Match, as docker matches COPY
// wildcards. Symlinked directories are followed.
func (t *fsTree) glob(pattern string) ([]string, error) {
	comps := splitPath(pattern)
	type cand struct {
		rel string
		n   *node
	}
	cands := []cand{{"", t.root}}
	for _, c := range comps {
		var next []cand
		for _, cd := range cands {
			dir := cd.n
			if dir.typ == tar.TypeSymlink {
				r, _, err := t.lookup(cd.rel, true)
				if err != nil {
					continue
				}
				dir = r
			}
			if !dir.isDir() {
				continue
			}
			if c == ".." {
				continue
			}
			if !hasWildcard(c) {
				if ch := dir.children[unescapeGlob(c)]; ch != nil {
					next = append(next, cand{path.Join(cd.rel, unescapeGlob(c)), ch})
				}
				continue
			}
			for _, name := range sortedNames(dir) {
				ok, err := path.Match(c, name)
				if err != nil {
					return nil, err
				}
				if ok {
					next = append(next, cand{path.Join(cd.rel, name), dir.children[name]})
				}
			}
		}
		cands = next
	}
	out := make([]string, 0, len(cands))
	for _, cd := range cands {
		out = append(out, cd.rel)
	}
	return out, nil
}

// hasWildcard reports whether s holds an unescaped path.Match meta character.
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[':
			return true
		case '\\':
			i++
		}
	}
	return false
}

// unescapeGlob removes the backslash escapes of a pattern without wildcards.
func unescapeGlob(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func sortedNames(n *node) []string {
	return slices.Sorted(maps.Keys(n.children))
}

// walkTree calls fn for n and every node below it, parents first and
// children in name order, with rel the path relative to n ("" for n).
func walkTree(n *node, rel string, fn func(rel string, n *node) error) error {
	if err := fn(rel, n); err != nil {
		return err
	}
	if !n.isDir() {
		return nil
	}
	for _, name := range sortedNames(n) {
		if err := walkTree(n.children[name], path.Join(rel, name), fn); err != nil {
			return err
		}
	}
	return nil
}

// applyLayer applies one layer or archive to the tree the way an OCI
// unpacker does: whiteouts remove lower entries, a hard link to a file of
// the same layer is the same node at two paths (to a lower layer's, a
// node sharing its bytes), and every regular file reads from src at its entry
// position. Paths are taken literally (no symlink following), as in a
// layer. gen marks the nodes this layer wrote.
func (t *fsTree) applyLayer(r io.Reader, src streamSource, gen int) error {
	entries, err := readEntries(r)
	if err != nil {
		return err
	}
	t.applyEntries(entries, src, gen)
	return nil
}

// applyEntries applies the entries of a layer read from src as
// generation gen (see applyLayer).
func (t *fsTree) applyEntries(entries []layerEntry, src streamSource, gen int) {
	for _, e := range entries {
		h, ordinal := e.h, e.ordinal
		name := path.Clean("/" + h.Name)
		if name == "/" {
			if h.Typeflag == tar.TypeDir {
				if n := nodeFromHeader(h); n != nil {
					t.root.mode, t.root.uid, t.root.gid, t.root.mtime = n.mode, n.uid, n.gid, n.mtime
				}
			}
			continue
		}
		dirName, base := path.Split(name)
		parent := t.literalDir(dirName, gen)
		if strings.HasPrefix(base, ".wh.") {
			if base == ".wh..wh..opq" {
				for k, ch := range parent.children {
					if ch.gen != gen {
						delete(parent.children, k)
					}
				}
			} else {
				delete(parent.children, strings.TrimPrefix(base, ".wh."))
			}
			continue
		}
		var n *node
		if h.Typeflag == tar.TypeLink {
			target := t.literal(path.Clean("/" + h.Linkname))
			if target == nil || target.typ != tar.TypeReg {
				continue
			}
			if target.gen == gen {
				// A link within the layer: one file at both paths, so
				// a COPY of both keeps them linked.
				parent.children[base] = target
				continue
			}
			n = &node{typ: tar.TypeReg, mode: target.mode, uid: target.uid, gid: target.gid,
				mtime: target.mtime, size: target.size, data: target.data, pax: maps.Clone(target.pax)}
		} else {
			n = nodeFromHeader(h)
			if n == nil {
				continue
			}
			if n.typ == tar.TypeReg {
				n.data = streamEntry{src: src, ordinal: ordinal, size: n.size}
			}
		}
		n.gen = gen
		if old := parent.children[base]; old != nil && old.isDir() && n.isDir() {
			n.children = old.children
		}
		parent.children[base] = n
	}
}

// literal returns the node at the symlink-free path p, or nil.
func (t *fsTree) literal(p string) *node {
	n := t.root
	for _, c := range splitPath(p) {
		if !n.isDir() {
			return nil
		}
		if n = n.children[c]; n == nil {
			return nil
		}
	}
	return n
}

// literalDir returns the directory at the symlink-free path p, replacing
// whatever is in the way and creating what is missing, as an unpacker does
// for a layer entry whose parents are not in the layer.
func (t *fsTree) literalDir(p string, gen int) *node {
	n := t.root
	for _, c := range splitPath(p) {
		ch := n.children[c]
		if ch == nil || !ch.isDir() {
			ch = &node{typ: tar.TypeDir, mode: 0o755, children: map[string]*node{}, gen: gen}
			n.children[c] = ch
		}
		n = ch
	}
	return n
}
