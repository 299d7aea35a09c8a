package dockerapi

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/build"
)

func init() { addRoutes((*Server).archiveRoutes) }

// archiveRoutes serves docker cp: a container's files as a tar (GET),
// their stat (HEAD), and a tar extracted into a directory (PUT).
//
// Every path is resolved inside the container's root filesystem with
// openat2(RESOLVE_IN_ROOT), and every file is made or opened relative
// to a directory so resolved, by one name with O_NOFOLLOW: neither
// "..", an absolute symlink nor a symlink swapped in meanwhile reaches
// the host. A running container's root is its process's (/proc/PID/root,
// with its volumes); a stopped one's is its root filesystem directory.
func (s *Server) archiveRoutes() {
	if s.svc.Containers == nil {
		return
	}
	s.handle("GET", "/containers/{id}/archive", s.getArchive)
	s.handle("PUT", "/containers/{id}/archive", s.putArchive)
}

// containerRoot opens the root directory of c's filesystem.
func containerRoot(c api.Container) (int, error) {
	root := filepath.Join(filepath.Dir(c.LogPath), "rootfs")
	if c.State.Status == api.StatusRunning && c.State.Pid > 0 {
		root = fmt.Sprintf("/proc/%d/root", c.State.Pid)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, errdefs.Conflict("the files of container %s cannot be reached: %v", c.Name, err)
	}
	return fd, nil
}

// openIn opens name inside the root rootfd with flags (O_NOFOLLOW
// applies to the last component).
func openIn(rootfd int, name string, flags uint64) (int, error) {
	for {
		fd, err := unix.Openat2(rootfd, name, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// pathStat is the X-Docker-Container-Path-Stat header's value.
func pathStat(name string, st *unix.Stat_t, link string) string {
	b, _ := json.Marshal(container.PathStat{Name: name, Size: st.Size, Mode: fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Unix()), LinkTarget: link})
	return base64.StdEncoding.EncodeToString(b)
}

// fileMode converts a stat mode to Go's fs.FileMode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
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
	rootfd, err := containerRoot(c)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	flags := uint64(unix.O_PATH | unix.O_NOFOLLOW)
	if strings.HasSuffix(p, "/") {
		flags = unix.O_PATH // a trailing slash follows a symlink to its directory
	}
	fd, err := openIn(rootfd, p, flags)
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
	rootfd, err := containerRoot(c)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	dfd, err := openIn(rootfd, p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return errdefs.Invalid("extraction point %s in container %s is not a directory", p, ref(r))
		}
		return errdefs.NotFound("Could not find the file %s in container %s", p, ref(r))
	}
	defer unix.Close(dfd)
	body, err := build.Decompress(r.Body)
	if err != nil {
		return errdefs.Invalid("the archive's compression cannot be read: %v", err)
	}
	defer body.Close()
	tr := tar.NewReader(body)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.Invalid("the archive is not a valid tar: %v", err)
		}
		if err := extractEntry(dfd, hdr, tr); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// extractEntry creates the tar entry hdr under the directory dfd: its
// parent is resolved inside dfd (RESOLVE_IN_ROOT), the entry itself is
// made there by its last name.
func extractEntry(dfd int, hdr *tar.Header, r io.Reader) error {
	name := path.Clean("/" + hdr.Name)
	if name == "/" {
		return nil
	}
	parent, base := path.Split(name)
	pfd, err := openIn(dfd, parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return errdefs.Invalid("archive entry %q: its directory %s is missing or not a directory: put directories before their files", hdr.Name, parent)
	}
	defer unix.Close(pfd)
	mode := uint32(hdr.Mode & 0o7777)
	var f *os.File
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, mode); err != nil && err != unix.EEXIST {
			return entryError(hdr, err)
		}
		// O_NOFOLLOW: a symlink where the directory should be is refused.
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return entryError(hdr, err)
		}
		f = os.NewFile(uintptr(fd), base)
	case tar.TypeReg:
		unix.Unlinkat(pfd, base, 0)
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err != nil {
			return entryError(hdr, err)
		}
		f = os.NewFile(uintptr(fd), base)
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return entryError(hdr, err)
		}
	case tar.TypeSymlink:
		unix.Unlinkat(pfd, base, 0)
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return entryError(hdr, err)
		}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryError(hdr, err)
		}
		return nil
	default:
		return errdefs.Invalid("archive entry %q: only files, directories and symlinks can be copied into a container (hard links, devices and FIFOs are not)", hdr.Name)
	}
	// Owner, mode and times go to the file opened, never through a name.
	defer f.Close()
	if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
		return entryError(hdr, err)
	}
	if err := f.Chmod(fileMode(mode)); err != nil {
		return entryError(hdr, err)
	}
	os.Chtimes(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), hdr.ModTime, hdr.ModTime)
	return nil
}

func entryError(hdr *tar.Header, err error) error {
	return errdefs.Invalid("archive entry %q: %v", hdr.Name, err)
}
