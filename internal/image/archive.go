package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// maxLinkHops bounds how many links an archive entry may go through.
const maxLinkHops = 32

// archivePath cleans the name of an archive entry and refuses one that is
// absolute or leaves the archive.
func archivePath(name string) (string, error) {
	p := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || p == ".." || strings.HasPrefix(p, "../") {
		return "", errdefs.Invalid("archive entry %q points outside the archive", name)
	}
	return p, nil
}

// extractArchive writes the entries of an image archive (a tar stream)
// under dir. Only directories, regular files and links between regular
// files of the archive are accepted; links become hard links, so nothing
// on disk is a symbolic link and no path under dir can lead outside it.
// Errors about the archive's content are errdefs.ErrInvalid.
func extractArchive(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(ctxReader{ctx, r})
	files := map[string]bool{}
	links := map[string]string{} // entry name -> archive path it points at
	readErr := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errdefs.Category(err) != nil {
			return fmt.Errorf("extract archive: %w", err)
		}
		return errdefs.Invalid("read archive: %v", err)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readErr(err)
		}
		name, err := archivePath(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return errdefs.Invalid("archive entry %q: %v", hdr.Name, err)
			}
		case tar.TypeReg:
			delete(links, name)
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return errdefs.Invalid("archive entry %q: %v", hdr.Name, err)
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return errdefs.Invalid("archive entry %q: %v", hdr.Name, err)
			}
			_, err = io.Copy(diskWriter{f}, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return readErr(fmt.Errorf("entry %q: %w", hdr.Name, err))
			}
			files[name] = true
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return errdefs.Invalid("archive entry %q is a symbolic link to the absolute path %q; only links within the archive are accepted", hdr.Name, hdr.Linkname)
			}
			t, err := archivePath(path.Join(path.Dir(name), hdr.Linkname))
			if err != nil {
				return errdefs.Invalid("archive entry %q links to %q, outside the archive", hdr.Name, hdr.Linkname)
			}
			dropFile(files, name, target)
			links[name] = t
		case tar.TypeLink:
			t, err := archivePath(hdr.Linkname)
			if err != nil {
				return errdefs.Invalid("archive entry %q links to %q, outside the archive", hdr.Name, hdr.Linkname)
			}
			dropFile(files, name, target)
			links[name] = t
		case tar.TypeXGlobalHeader:
		default:
			return errdefs.Invalid("archive entry %q has type %q: an image archive holds only files, directories and links", hdr.Name, string(hdr.Typeflag))
		}
	}
	names := make([]string, 0, len(links))
	for n := range links {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := links[n]
		for hops := 0; !files[t]; hops++ {
			next, ok := links[t]
			if !ok || hops >= maxLinkHops {
				return errdefs.Invalid("archive entry %q links to %q, which is not a file in the archive", n, links[n])
			}
			t = next
		}
		dst := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return errdefs.Invalid("archive entry %q: %v", n, err)
		}
		if err := os.Link(filepath.Join(dir, filepath.FromSlash(t)), dst); err != nil {
			return errdefs.Invalid("archive entry %q: %v", n, err)
		}
	}
	return nil
}

// dropFile forgets a regular file an archive entry replaces with a link.
func dropFile(files map[string]bool, name, target string) {
	if files[name] {
		os.Remove(target)
		delete(files, name)
	}
}
