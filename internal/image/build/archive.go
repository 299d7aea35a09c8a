package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"skiff.dev/skiff/api/errdefs"
)

// Magic numbers of the compressions docker's ADD recognises.
var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08}
	magicBzip2 = []byte{0x42, 0x5a, 0x68}
	magicXz    = []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// readCloser joins a reader with the closers beneath it.
type readCloser struct {
	io.Reader
	closers []io.Closer
}

func (r *readCloser) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// decompress returns the uncompressed stream of rc, whatever its
// compression (gzip, bzip2, xz, zstd or none).
func decompress(rc io.ReadCloser) (io.ReadCloser, error) {
	br := bufio.NewReader(rc)
	head, _ := br.Peek(6)
	var r io.Reader = br
	closers := []io.Closer{rc}
	var err error
	switch {
	case bytes.HasPrefix(head, magicGzip):
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(br); err == nil {
			r = zr
			closers = append([]io.Closer{zr}, closers...)
		}
	case bytes.HasPrefix(head, magicBzip2):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(head, magicXz):
		r, err = xz.NewReader(br)
	case bytes.HasPrefix(head, magicZstd):
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(br); err == nil {
			r = zr
			closers = append([]io.Closer{closerFunc(func() error { zr.Close(); return nil })}, closers...)
		}
	}
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &readCloser{Reader: r, closers: closers}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// archiveSource reads a (possibly compressed) tar archive file.
type archiveSource struct{ c content }

func (a archiveSource) openTar() (io.ReadCloser, error) {
	rc, err := a.c.open()
	if err != nil {
		return nil, err
	}
	return decompress(rc)
}

// isArchive reports whether a file is a tar archive, compressed or not,
// the test docker's ADD makes before extracting.
func isArchive(n *node) bool {
	rc, err := archiveSource{n.data}.openTar()
	if err != nil {
		return false
	}
	defer rc.Close()
	_, err = tar.NewReader(rc).Next()
	return err == nil
}

// extract unpacks an archive below dest, as ADD does with local tar
// files: entries keep their owners (unless --chown) and modes; entries
// escaping dest or looking like overlay whiteouts are refused; device
// nodes are left out with one warning, as every container gets its own
// /dev (the image store would skip them too).
func (c *copier) extract(it copyItem, dest string) error {
	fail := func(format string, args ...any) error {
		return errdefs.Invalid("%s %s: %s", c.op.name, it.src, fmt.Sprintf(format, args...))
	}
	if _, err := c.mkdir(dest); err != nil {
		return err
	}
	keep := c.keepOwner
	c.keepOwner = true
	defer func() { c.keepOwner = keep }()
	rc, err := archiveSource{it.n.data}.openTar()
	if err != nil {
		return fail("opening the archive: %v", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	written := map[string]*node{}
	devices, firstDevice := 0, ""
	skipped := map[string]bool{}
	for {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			if devices > 0 {
				c.b.warn(fmt.Sprintf("%s %s: left out %d device nodes (the first %s): every container gets its own /dev",
					c.op.name, it.src, devices, firstDevice))
			}
			return nil
		}
		if err != nil {
			return fail("reading the archive: %v", err)
		}
		rel := path.Clean(strings.TrimLeft(h.Name, "/"))
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return fail("archive entry %q points outside the destination", h.Name)
		}
		if rel == "." || h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if strings.HasPrefix(path.Base(rel), ".wh.") {
			return fail("archive entry %q looks like an overlay whiteout, which would delete files from the image", h.Name)
		}
		if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock ||
			h.Typeflag == tar.TypeLink && skipped[path.Clean(strings.TrimLeft(h.Linkname, "/"))] {
			// Images run without them (see internal/image/unpack).
			if devices++; devices == 1 {
				firstDevice = rel
			}
			skipped[rel] = true
			continue
		}
		var n *node
		if h.Typeflag == tar.TypeLink {
			target := path.Clean(strings.TrimLeft(h.Linkname, "/"))
			if n = written[target]; n == nil {
				return fail("archive entry %q is a hard link to %q, which is not a file earlier in the archive", h.Name, h.Linkname)
			}
			if err := c.link(path.Join(dest, rel), n); err != nil {
				return err
			}
			written[rel] = n
			continue
		} else if n = nodeFromHeader(h); n == nil {
			continue
		} else if n.typ == tar.TypeReg {
			if n.data, err = c.b.spool.add(tr, n.size); err != nil {
				return fail("reading the archive: %v", err)
			}
		}
		placed, err := c.place(path.Join(dest, rel), n)
		if err != nil {
			return err
		}
		if placed.typ == tar.TypeReg {
			written[rel] = placed
		}
	}
}
