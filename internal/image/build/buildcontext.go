package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"skiff.dev/skiff/api/buildcontext"
	"skiff.dev/skiff/internal/inroot"
)

// buildContext is a build context directory with its ignore rules, read
// with api/buildcontext (the code the CLI makes its context tar with).
//
// Every file of the context is read with internal/inroot: symlinks resolve
// inside the context, and only regular files are read (the Dockerfile and
// ignore files of bounded size), so a context uploaded to the daemon
// cannot make it read its own files, block on a FIFO or read a device.
type buildContext struct {
	*buildcontext.Context
}

// openContext checks dir and the Dockerfile and loads the ignore rules.
func openContext(dir, dockerfile string) (*buildContext, error) {
	cx, err := buildcontext.Open(dir, dockerfile, buildcontext.Options{ReadFile: inroot.ReadFile, Readlink: inroot.Readlink})
	if err != nil {
		return nil, err
	}
	return &buildContext{cx}, nil
}

// node returns the node for the context entry rel, owned by root, or nil
// for sockets. Its content is read with inroot when a step copies it.
func (cx *buildContext) node(rel, abs string, fi fs.FileInfo) (*node, error) {
	h, err := buildcontext.Header(rel, abs, fi)
	if err != nil || h == nil {
		return nil, err
	}
	n := &node{typ: h.Typeflag, mode: h.Mode, mtime: h.ModTime, link: h.Linkname, devMajor: h.Devmajor, devMinor: h.Devminor}
	switch n.typ {
	case tar.TypeReg:
		n.size = h.Size
		n.data = fileContent{root: cx.Dir, rel: rel}
	case tar.TypeDir:
		n.children = map[string]*node{}
	}
	return n, nil
}

// tree reads the context into a tree, without the ignored entries.
func (cx *buildContext) tree(ctx context.Context) (*fsTree, error) {
	t := newTree()
	if st, err := os.Stat(cx.Dir); err == nil {
		t.root.mtime = st.ModTime().Truncate(time.Second)
	}
	err := cx.Walk(ctx, func(rel, abs string, fi fs.FileInfo) error {
		n, err := cx.node(rel, abs, fi)
		if err != nil || n == nil {
			return err
		}
		parent, err := cx.parentIn(t, rel)
		if err != nil {
			return err
		}
		parent.children[path.Base(rel)] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// parentIn returns the directory node of rel's parent; walk reports
// parents first.
func (cx *buildContext) parentIn(t *fsTree, rel string) (*node, error) {
	n := t.root
	for _, c := range splitPath(path.Dir(rel)) {
		if n = n.children[c]; n == nil || !n.isDir() {
			return nil, fmt.Errorf("%s: the parent directory was not read first", rel)
		}
	}
	return n, nil
}
