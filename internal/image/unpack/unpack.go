package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// Options tune Apply.
type Options struct {
	// Lowers are the unpacked directories of the layers below this one, top first.
	// They are only read: to resolve hardlinks whose target is not in this layer
	// (the file is then copied into dir), and nothing else.
	Lowers []string
	// AllowDevices creates character and block device entries. By default
	// they are skipped and counted in Stats: a container gets its own /dev
	// from the runtime. Whiteouts are not device entries in the tar and are
	// always handled.
	AllowDevices bool
}

// Stats describes what Apply wrote.
type Stats struct {
	// Entries counts the tar entries applied; skipped PAX global headers
	// and AUFS metadata entries are not counted.
	Entries int
	// Bytes counts the file content written, including files copied from
	// lower layers to resolve hardlinks.
	Bytes int64
	// SkippedDevices counts the character and block device entries, and
	// hardlinks to them, left out because Options.AllowDevices is not set;
	// FirstSkippedDevice is the cleaned name of the first of them.
	SkippedDevices     int
	FirstSkippedDevice string
	// Root is the metadata of the layer's directory entry for its own root
	// ("./" or "/"), the last one when there are several; nil when the
	// layer has none. Apply does not give it to the directory it writes
	// into: that directory is the caller's.
	Root *RootEntry
}

// RootEntry is the metadata a layer tar gives its root directory.
type RootEntry struct {
	// UID and GID are the numeric owner.
	UID, GID int
	// Mode holds the permission bits with setuid, setgid and sticky.
	Mode uint32
	// ModTime and AccessTime are the entry's times; AccessTime is ModTime
	// when the tar has none.
	ModTime, AccessTime time.Time
}

// EntryError names the tar entry that was refused and why. It matches
// errdefs.ErrInvalid.
type EntryError struct {
	// Name is the entry's name as the tar spells it.
	Name string
	// Reason says what is wrong with the entry.
	Reason string
}

// Error returns `layer entry "<name>": <reason>`.
func (e *EntryError) Error() string {
	return fmt.Sprintf("layer entry %q: %s", e.Name, e.Reason)
}

// Is reports whether target is errdefs.ErrInvalid, the category of every
// refused entry.
func (e *EntryError) Is(target error) bool { return target == errdefs.ErrInvalid }

// Apply reads an uncompressed layer tar from r and writes it into dir, which must
// exist and be empty, in overlayfs format: an OCI whiteout ".wh.NAME" becomes a 0/0
// character device NAME, an opaque marker ".wh..wh..opq" sets the xattr
// trusted.overlay.opaque=y on its directory. Ownership, modes (incl. setuid/sticky),
// mtimes and xattrs (PAX SCHILY.xattr.*; security.capability matters) are kept.
// An entry that would land outside dir — ".." escaping, absolute names that escape
// after cleaning, a path through a symlink, a hardlink whose target escapes or does
// not exist, unknown entry types — is refused with an *EntryError, and on any
// error Apply removes everything it wrote, leaving dir empty. Device nodes are
// skipped and counted in Stats unless opts.AllowDevices is set.
//
// The package documentation details the rules for names, entry types,
// whiteouts and metadata.
func Apply(ctx context.Context, dir string, r io.Reader, opts Options) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, fmt.Errorf("unpack layer into %s: %w", dir, err)
	}
	u, err := newUnpacker(dir, opts)
	if err != nil {
		return Stats{}, err
	}
	defer u.close()
	if err := u.apply(ctx, r); err != nil {
		if cerr := u.clear(); cerr != nil {
			err = errors.Join(err, errdefs.Unavailable("remove the partly unpacked layer from %s: %w; remove the directory by hand", dir, cerr))
		}
		return Stats{}, err
	}
	return u.stats, nil
}

// unpacker holds the state of one Apply call.
type unpacker struct {
	dir  string
	root int // descriptor of dir
	opts Options
	// lowers are descriptors of opts.Lowers, opened on first use (-1 until then).
	lowers []int
	// cacheRel and cacheFD remember the last parent directory resolved, as
	// entries of one directory usually follow each other.
	cacheRel string
	cacheFD  int
	// dirTimes are the times of directory entries, set once the layer is
	// complete since creating children changes them.
	dirTimes map[string][2]unix.Timespec
	// copies maps a hardlink target found in a lower layer to the copy made
	// in this layer, so further links to it share one inode.
	copies map[string]copyRecord
	buf    []byte
	stats  Stats
	// sparseBytes adds up the logical sizes of the sparse files so far.
	sparseBytes int64
	// skipped holds the names of the device entries skipped so far, so
	// that hardlinks to them are skipped too.
	skipped map[string]bool
}

func newUnpacker(dir string, opts Options) (*unpacker, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, errdefs.NotFound("unpack layer: directory %s does not exist; create it first", dir)
		case errors.Is(err, unix.ENOTDIR):
			return nil, errdefs.Invalid("unpack layer: %s is not a directory", dir)
		}
		return nil, errdefs.Unavailable("unpack layer: open %s: %w", dir, err)
	}
	u := &unpacker{dir: dir, root: fd, opts: opts, cacheFD: -1}
	names, err := readNames(fd)
	if err != nil {
		u.close()
		return nil, errdefs.Unavailable("unpack layer: read %s: %w", dir, err)
	}
	if len(names) > 0 {
		u.close()
		return nil, errdefs.Conflict("unpack layer: directory %s is not empty (it holds %q); unpack into a new empty directory", dir, names[0])
	}
	u.lowers = make([]int, len(opts.Lowers))
	for i := range u.lowers {
		u.lowers[i] = -1
	}
	u.dirTimes = make(map[string][2]unix.Timespec)
	u.copies = make(map[string]copyRecord)
	u.buf = make([]byte, 256<<10)
	return u, nil
}

func (u *unpacker) close() {
	u.dropCache()
	for i, fd := range u.lowers {
		if fd >= 0 {
			unix.Close(fd)
			u.lowers[i] = -1
		}
	}
	if u.root >= 0 {
		unix.Close(u.root)
		u.root = -1
	}
}

// clear removes everything under dir, leaving dir itself in place.
func (u *unpacker) clear() error {
	u.dropCache()
	names, err := readNames(u.root)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := removeAllAt(u.root, name); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// sourceReader remembers the first error of the caller's reader, to tell
// it apart from errors in the tar format.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// bodyReadError is an error reading an entry's content from the tar stream.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

func (u *unpacker) apply(ctx context.Context, r io.Reader) error {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	if magic, _ := br.Peek(10); compression(magic) != "" {
		if src.err != nil {
			return fmt.Errorf("unpack layer: read layer stream: %w", src.err)
		}
		return errdefs.Invalid("unpack layer: the layer's tar stream is itself %s-compressed; a layer is a tar compressed at most once: decompress it and store the tar", compression(magic))
	}
	tr := tar.NewReader(br)
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("unpack layer into %s: %w", u.dir, err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			switch {
			case src.err != nil:
				return fmt.Errorf("unpack layer: read layer stream: %w", src.err)
			case last == "":
				return errdefs.WithCategory(errdefs.ErrInvalid, fmt.Errorf("unpack layer: the stream is not a tar archive or is truncated: %w", err))
			}
			return errdefs.WithCategory(errdefs.ErrInvalid, fmt.Errorf("unpack layer: the tar stream is corrupt or truncated after entry %q: %w", last, err))
		}
		last = hdr.Name
		if err := u.entry(ctx, tr, hdr); err != nil {
			var be *bodyReadError
			if !errors.As(err, &be) {
				return err
			}
			if src.err != nil {
				return fmt.Errorf("unpack layer: read layer stream: %w", src.err)
			}
			return &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("the tar stream ends or breaks inside its content: %v", be.err)}
		}
	}
	return u.finish()
}

// compression names the compression format whose magic number starts b,
// or returns "".
func compression(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	case len(b) >= 10 && bytes.HasPrefix(b, []byte("BZh")) && b[3] >= '1' && b[3] <= '9' &&
		bytes.Equal(b[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}):
		return "bzip2"
	}
	return ""
}

// finish sets the times of the layer's directories.
func (u *unpacker) finish() error {
	rels := make([]string, 0, len(u.dirTimes))
	for rel := range u.dirTimes {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		parent, base := splitRel(rel)
		pfd, err := u.parentDir(parent)
		if err != nil {
			return u.classify(rel, err)
		}
		ts := u.dirTimes[rel]
		if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return u.classify(rel, fmt.Errorf("set times: %w", err))
		}
	}
	return nil
}

// classify turns an error met while applying the entry called name into
// the error Apply returns.
func (u *unpacker) classify(name string, err error) error {
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		return &EntryError{Name: name, Reason: rf.reason}
	case errors.Is(err, unix.ENAMETOOLONG):
		return &EntryError{Name: name, Reason: "a name component or link target is longer than the file system allows"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("unpack layer into %s: %w", u.dir, err)
	case errdefs.Category(err) != nil:
		return err
	}
	var be *bodyReadError
	if errors.As(err, &be) {
		return err
	}
	return errdefs.Unavailable("unpack layer into %s: entry %q: %w", u.dir, name, err)
}

// refusal is the reason an entry is refused; classify turns it into an
// *EntryError naming the entry.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refuse(format string, args ...any) error {
	return &refusal{reason: fmt.Sprintf(format, args...)}
}
