package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/unpack"
)

// diffLayer writes the changes an overlayfs upper directory holds as an
// OCI layer: whiteouts (character devices 0:0) become .wh.NAME entries,
// opaque directories (trusted.overlay.opaque=y) get a .wh..wh..opq entry,
// and files keep their owners, modes, times, extended attributes (but
// overlayfs's own trusted.overlay.*) and hard links. Entries are written
// parents first, siblings in name order. A directory without changes
// gives a nil layer.
func (b *builder) diffLayer(ctx context.Context, upper string) (*fileLayer, error) {
	lw, err := newLayerWriter(b.tmpDir)
	if err != nil {
		return nil, errdefs.Unavailable("%w", err)
	}
	defer lw.abort()
	entries, unfit := 0, false
	links := map[[2]uint64]string{}
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil || rel == "." {
			return err
		}
		n, fits, err := b.diffEntry(lw.tw, p, filepath.ToSlash(rel), links)
		entries += n
		unfit = unfit || !fits
		return err
	})
	if err != nil {
		if errdefs.Category(err) == nil && ctx.Err() == nil {
			err = errdefs.Unavailable("writing the step's layer: %w", err)
		}
		return nil, err
	}
	if entries == 0 {
		return nil, nil
	}
	l, err := lw.finish()
	if err != nil {
		return nil, errdefs.Unavailable("%w", err)
	}
	l.unfit = unfit
	return l, nil
}

// diffEntry writes the tar entries of one file of the upper directory and
// returns how many it wrote. It gives the file the mtime the layer
// records (whole seconds, clamped to SOURCE_DATE_EPOCH), so the upper
// directory holds what unpacking the layer would give; fits is false for
// a file unpacking would leave out (a device node, a socket).
func (b *builder) diffEntry(tw *tar.Writer, p, rel string, links map[[2]uint64]string) (n int, fits bool, err error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false, fmt.Errorf("%s: no file status", rel)
	}
	mtime := b.mtime(time.Unix(st.Mtim.Unix()).Truncate(time.Second))
	if !mtime.Equal(time.Unix(st.Mtim.Unix())) {
		ts := []unix.Timespec{unix.NsecToTimespec(syscall.TimespecToNsec(st.Atim)), unix.NsecToTimespec(mtime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return 0, false, fmt.Errorf("%s: %w", rel, err)
		}
	}
	if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
		dir, base := splitRel(rel)
		h := &tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh." + base, Mode: 0, ModTime: mtime, Format: tar.FormatPAX}
		return 1, true, tw.WriteHeader(h)
	}
	if fi.Mode()&fs.ModeSocket != 0 {
		return 0, false, nil // a tar cannot hold a socket; docker leaves them out too
	}
	n, err = b.diffFile(tw, p, rel, fi, st, mtime, links)
	return n, fi.Mode()&fs.ModeDevice == 0, err
}

// diffFile writes the tar entries of a file, directory or link.
func (b *builder) diffFile(tw *tar.Writer, p, rel string, fi fs.FileInfo, st *syscall.Stat_t, mtime time.Time, links map[[2]uint64]string) (int, error) {
	var err error
	var link string
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := links[key]; ok {
			link = first
		} else {
			links[key] = rel
		}
	}
	var target string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(p); err != nil {
			return 0, err
		}
	}
	h, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", rel, err)
	}
	h.Name, h.Uname, h.Gname, h.Format = rel, "", "", tar.FormatPAX
	h.ModTime, h.AccessTime, h.ChangeTime = mtime, time.Time{}, time.Time{}
	if fi.IsDir() {
		h.Name += "/"
	}
	if link != "" {
		h.Typeflag, h.Linkname, h.Size = tar.TypeLink, link, 0
	}
	opaque := false
	if link == "" {
		xattrs, err := unpack.Xattrs(p)
		if err != nil {
			return 0, fmt.Errorf("%s: reading extended attributes: %w", rel, err)
		}
		opaque = fi.IsDir() && isOpaque(p)
		for k, v := range xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	if err := tw.WriteHeader(h); err != nil {
		return 0, fmt.Errorf("%s: %w", rel, err)
	}
	if h.Typeflag == tar.TypeReg && h.Size > 0 {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", rel, err)
		}
	}
	if opaque {
		ts := &tar.Header{Typeflag: tar.TypeReg, Name: rel + "/.wh..wh..opq", ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(ts); err != nil {
			return 0, err
		}
		return 2, nil
	}
	return 1, nil
}

// splitRel splits a slash path into "dir/" (or "") and its base name.
func splitRel(rel string) (string, string) {
	i := strings.LastIndexByte(rel, '/')
	return rel[:i+1], rel[i+1:]
}

// isOpaque reports whether overlayfs marked the directory p opaque.
func isOpaque(p string) bool {
	var v [1]byte
	n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", v[:])
	return err == nil && n == 1 && v[0] == 'y'
}
