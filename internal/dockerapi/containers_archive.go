package dockerapi

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/ctrfiles"
)

func init() { addRoutes((*Server).archiveRoutes) }

// archiveRoutes serves docker cp: a container's files as a tar (GET),
// their stat (HEAD), and a tar extracted into a directory (PUT), all
// resolved inside the container's root (see package ctrfiles).
func (s *Server) archiveRoutes() {
	if s.svc.Containers == nil {
		return
	}
	s.handle("GET", "/containers/{id}/archive", s.getArchive)
	s.handle("PUT", "/containers/{id}/archive", s.putArchive)
}

// pathStat is the X-Docker-Container-Path-Stat header's value.
func pathStat(name string, st *unix.Stat_t, link string) string {
	b, _ := json.Marshal(container.PathStat{Name: name, Size: st.Size, Mode: ctrfiles.FileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Unix()), LinkTarget: link})
	return base64.StdEncoding.EncodeToString(b)
}

// archivePath reads ?path=, which must be absolute.
func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.Invalid("path is empty: give the path inside the container")
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p, nil
}

// getArchive answers the stat of path (HEAD) or a tar of it (GET): a
// file, a symlink (not followed) or a directory with all it holds.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	rootfd, err := ctrfiles.Root(c)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	flags := uint64(unix.O_PATH | unix.O_NOFOLLOW)
	if strings.HasSuffix(p, "/") {
		flags = unix.O_PATH // a trailing slash follows a symlink to its directory
	}
	fd, err := ctrfiles.OpenIn(rootfd, p, flags)
	if err != nil {
		return errdefs.NotFound("Could not find the file %s in container %s", p, ref(r))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	name := path.Base(path.Clean(p))
	link := ""
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		link = readlinkFd(fd)
	}
	w.Header().Set("X-Docker-Container-Path-Stat", pathStat(name, &st, link))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	if err := addEntry(tw, fd, name, &st, link); err != nil {
		s.log.Debug("archive cut short", "container", c.ID, "path", p, "err", err)
		return nil
	}
	tw.Close()
	return nil
}

// readlinkFd reads the target of the symlink opened (O_PATH) as fd.
func readlinkFd(fd int) string {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil || n < 0 {
		return ""
	}
	return string(buf[:n])
}

// addEntry writes the file opened (O_PATH) as fd, named name in the
// tar, and for a directory everything under it.
func addEntry(tw *tar.Writer, fd int, name string, st *unix.Stat_t, link string) error {
	hdr := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		return addDir(tw, fd, name)
	case unix.S_IFLNK:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, link
		return tw.WriteHeader(hdr)
	case unix.S_IFREG:
		f, err := reopen(fd)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.CopyN(tw, f, st.Size)
		return err
	}
	return nil // devices, FIFOs and sockets are left out
}

// reopen opens the regular file held as an O_PATH fd for reading.
func reopen(fd int) (*os.File, error) {
	nfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "file"), nil
}

// addDir writes the entries of the directory opened (O_PATH) as fd.
func addDir(tw *tar.Writer, fd int, name string) error {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dfd), name)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		cfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // gone meanwhile
		}
		var st unix.Stat_t
		err = unix.Fstat(cfd, &st)
		link := ""
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			link = readlinkFd(cfd)
		}
		if err == nil {
			err = addEntry(tw, cfd, name+"/"+n, &st, link)
		}
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// putArchive extracts the tar in the body (plain, or compressed with
// gzip, bzip2, xz or zstd) into the directory path.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if err := ctrfiles.Extract(c, p, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
