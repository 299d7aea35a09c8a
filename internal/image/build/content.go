package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"skiff.dev/skiff/internal/inroot"
)

// content is where a regular file's bytes come from.
type content interface {
	open() (io.ReadCloser, error)
}

// fileContent is the regular file rel of the build context root, read as
// internal/inroot reads: inside the root, and only if regular.
type fileContent struct{ root, rel string }

func (c fileContent) open() (io.ReadCloser, error) { return inroot.Open(c.root, c.rel, -1) }

// memContent is bytes held in memory (heredocs).
type memContent []byte

func (c memContent) open() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(c)), nil
}

// spoolContent is a range of the build's spool file.
type spoolContent struct {
	f        *os.File
	off, len int64
}

func (c spoolContent) open() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(c.f, c.off, c.len)), nil
}

// streamSource is an uncompressed tar stream that can be read again: an
// image layer or an archive in the build context.
type streamSource interface {
	openTar() (io.ReadCloser, error)
}

// streamEntry is the regular file at position ordinal of a tar stream.
// Opening it alone reads the stream up to it; spool.fetch reads the bytes
// of many entries in one pass.
type streamEntry struct {
	src     streamSource
	ordinal int
	size    int64
}

func (c streamEntry) open() (io.ReadCloser, error) {
	rc, err := c.src.openTar()
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(rc)
	for i := 0; ; i++ {
		if _, err := tr.Next(); err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading tar entry %d: %w", c.ordinal, err)
		}
		if i == c.ordinal {
			return struct {
				io.Reader
				io.Closer
			}{tr, rc}, nil
		}
	}
}

// spool is a temporary file holding bytes fetched from tar streams, so
// that many files of one layer are read in one pass. It lives as long as
// one Build; stages building at the same time share it.
type spool struct {
	mu  sync.Mutex
	dir string
	f   *os.File
	end int64
}

func (s *spool) file() (*os.File, error) {
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "skiff-build-spool-*")
		if err != nil {
			return nil, err
		}
		os.Remove(f.Name())
		s.f = f
	}
	return s.f, nil
}

func (s *spool) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
	}
}

// fetch replaces the streamEntry content of the given nodes by spooled
// copies, reading each stream once.
func (s *spool) fetch(nodes []*node) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bySrc := map[streamSource]map[int][]*node{}
	var order []streamSource
	for _, n := range nodes {
		e, ok := n.data.(streamEntry)
		if !ok {
			continue
		}
		m := bySrc[e.src]
		if m == nil {
			m = map[int][]*node{}
			bySrc[e.src] = m
			order = append(order, e.src)
		}
		m[e.ordinal] = append(m[e.ordinal], n)
	}
	for _, src := range order {
		if err := s.fetchStream(src, bySrc[src]); err != nil {
			return err
		}
	}
	return nil
}

func (s *spool) fetchStream(src streamSource, want map[int][]*node) error {
	f, err := s.file()
	if err != nil {
		return err
	}
	rc, err := src.openTar()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	left := len(want)
	for i := 0; left > 0; i++ {
		if _, err := tr.Next(); err != nil {
			return fmt.Errorf("reading tar entry %d: %w", i, err)
		}
		nodes, ok := want[i]
		if !ok {
			continue
		}
		n, err := io.Copy(io.NewOffsetWriter(f, s.end), tr)
		if err != nil {
			return err
		}
		c := spoolContent{f: f, off: s.end, len: n}
		s.end += n
		for _, nd := range nodes {
			nd.data = c
		}
		left--
	}
	return nil
}

// add copies size bytes of r to the spool.
func (s *spool) add(r io.Reader, size int64) (spoolContent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.file()
	if err != nil {
		return spoolContent{}, err
	}
	n, err := io.Copy(io.NewOffsetWriter(f, s.end), io.LimitReader(r, size))
	if err != nil {
		return spoolContent{}, err
	}
	if n != size {
		return spoolContent{}, io.ErrUnexpectedEOF
	}
	c := spoolContent{f: f, off: s.end, len: n}
	s.end += n
	return c, nil
}
