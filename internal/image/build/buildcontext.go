package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/inroot"
)

// ContextTar streams the build context dir as a tar, skipping what
// .dockerignore excludes (the Dockerfile and .dockerignore are always
// included) — the CLI uploads this to the daemon.
//
// dockerfile is the Dockerfile's path relative to dir (or absolute, inside
// dir); empty means dir/Dockerfile. As with docker, <Dockerfile>.dockerignore
// next to the Dockerfile, when present, replaces dir/.dockerignore.
// Entries keep their mode and mtime; owners are root. Errors found before
// streaming (no such dir, no Dockerfile, a bad ignore file) are returned
// at once; later ones surface from Read.
func ContextTar(dir string, dockerfile string) (io.ReadCloser, error) {
	cx, err := openContext(dir, dockerfile)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(cx.writeTar(pw))
	}()
	return pr, nil
}

// maxControlFile bounds the Dockerfile and the ignore files.
const maxControlFile = 4 << 20

// buildContext is a build context directory with its ignore rules.
//
// Every file of the context is read with internal/inroot: symlinks resolve
// inside the context, and only regular files are read (the Dockerfile and
// ignore files of bounded size), so a context uploaded to the daemon
// cannot make it read its own files, block on a FIFO or read a device.
type buildContext struct {
	dir        string
	dockerfile string   // relative to dir, slash separated
	dfData     []byte   // the Dockerfile's content
	forced     []string // relative paths always included in ContextTar
	ignore     *patternmatcher.PatternMatcher
	ignoreFile string // relative path of the ignore file in use, or ""
}

// openContext checks dir and the Dockerfile and loads the ignore rules.
func openContext(dir, dockerfile string) (*buildContext, error) {
	if dir == "" {
		return nil, errdefs.Invalid("no build context directory given: pass the directory holding the files to COPY (often .)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errdefs.Invalid("build context %q: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("build context directory %q does not exist", dir)
		}
		return nil, errdefs.Invalid("build context %q: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, errdefs.Invalid("build context %q is not a directory", dir)
	}
	cx := &buildContext{dir: abs}
	dfAbs := dockerfilePath(abs, dockerfile)
	rel, err := filepath.Rel(abs, dfAbs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, errdefs.Invalid("Dockerfile %q is outside the build context %q: move it into the context directory", dockerfile, dir)
	}
	cx.dockerfile = filepath.ToSlash(rel)
	if cx.dfData, err = cx.readFile(cx.dockerfile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("no Dockerfile %q in the build context%s: create one or name it with -f", cx.dockerfile, cx.linkHint(cx.dockerfile))
		}
		return nil, errdefs.Invalid("reading the Dockerfile: %w", err)
	}
	cx.forced = append(cx.forced, cx.dockerfile)
	if err := cx.loadIgnore(); err != nil {
		return nil, err
	}
	return cx, nil
}

// readFile reads the regular file rel of the context (see buildContext).
func (cx *buildContext) readFile(rel string) ([]byte, error) {
	return inroot.ReadFile(cx.dir, rel, maxControlFile)
}

// linkHint explains that rel is a symlink leading out of the context, or
// is "".
func (cx *buildContext) linkHint(rel string) string {
	target, ok := inroot.Readlink(cx.dir, rel)
	if !ok {
		return ""
	}
	return fmt.Sprintf(" (it is a symlink to %q, which is not in the context: symlinks resolve inside it)", target)
}

// dockerfilePath resolves the Dockerfile path: relative paths are taken
// relative to the context directory.
func dockerfilePath(contextDir, dockerfile string) string {
	switch {
	case dockerfile == "":
		return filepath.Join(contextDir, "Dockerfile")
	case filepath.IsAbs(dockerfile):
		return filepath.Clean(dockerfile)
	default:
		return filepath.Join(contextDir, dockerfile)
	}
}

// loadIgnore reads <Dockerfile>.dockerignore, or else .dockerignore.
func (cx *buildContext) loadIgnore() error {
	for _, rel := range []string{cx.dockerfile + ".dockerignore", ".dockerignore"} {
		data, err := cx.readFile(rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return errdefs.Invalid("reading the ignore file: %w", err)
		}
		patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
		if err != nil {
			return errdefs.Invalid("reading %s: %w", rel, err)
		}
		cx.ignoreFile = rel
		cx.forced = append(cx.forced, cx.ignoreFile)
		if len(patterns) == 0 {
			return nil
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return errdefs.Invalid("%s: %w", rel, err)
		}
		cx.ignore = pm
		return nil
	}
	return nil
}

// ignored reports whether rel (slash separated, relative to the context)
// is excluded by the ignore rules.
func (cx *buildContext) ignored(rel string) bool {
	if cx.ignore == nil {
		return false
	}
	ok, err := cx.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// walk calls fn for every entry of the context the ignore rules keep,
// parents before children and siblings in name order, like docker's
// context tar. An excluded directory holding entries that a "!" pattern
// brings back is reported just before the first of them, so that its
// metadata travels too. rel is slash separated; the root is not reported.
func (cx *buildContext) walk(ctx context.Context, fn func(rel, abs string, fi fs.FileInfo) error) error {
	type pendingDir struct {
		rel, abs string
		fi       fs.FileInfo
	}
	parents := map[string]patternmatcher.MatchInfo{}
	var pending []pendingDir // excluded directories walked into, outermost first
	return filepath.WalkDir(cx.dir, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(cx.dir, abs)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		for len(pending) > 0 && !strings.HasPrefix(rel, pending[len(pending)-1].rel+"/") {
			pending = pending[:len(pending)-1]
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if cx.ignore != nil {
			skip, info, err := cx.ignore.MatchesUsingParentResults(rel, parents[path.Dir(rel)])
			if err != nil {
				return errdefs.Invalid("%s: %w", cx.ignoreFile, err)
			}
			if d.IsDir() {
				parents[rel] = info
			}
			if skip {
				if !d.IsDir() {
					return nil
				}
				if cx.keepWalking(rel) {
					pending = append(pending, pendingDir{rel, abs, fi})
					return nil
				}
				return filepath.SkipDir
			}
		}
		for _, p := range pending {
			if err := fn(p.rel, p.abs, p.fi); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return fn(rel, abs, fi)
	})
}

// keepWalking reports whether an excluded directory may hold entries that
// an exclusion pattern ("!dir/keep") brings back.
func (cx *buildContext) keepWalking(rel string) bool {
	if !cx.ignore.Exclusions() {
		return false
	}
	for _, p := range cx.ignore.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", rel+"/") {
			return true
		}
	}
	return false
}

// node returns the node for the context entry rel, owned by root, or nil
// for sockets.
func (cx *buildContext) node(rel, abs string, fi fs.FileInfo) (*node, error) {
	m := fi.Mode()
	n := &node{mode: int64(m.Perm()), mtime: fi.ModTime().Truncate(time.Second)}
	if m&fs.ModeSetuid != 0 {
		n.mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n.mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n.mode |= 0o1000
	}
	switch {
	case m.IsRegular():
		n.typ = tar.TypeReg
		n.size = fi.Size()
		n.data = fileContent{root: cx.dir, rel: rel}
	case m.IsDir():
		n.typ = tar.TypeDir
		n.children = map[string]*node{}
	case m&fs.ModeSymlink != 0:
		n.typ = tar.TypeSymlink
		target, err := os.Readlink(abs)
		if err != nil {
			return nil, err
		}
		n.link = target
	case m&fs.ModeNamedPipe != 0:
		n.typ = tar.TypeFifo
	case m&fs.ModeDevice != 0:
		n.typ = tar.TypeBlock
		if m&fs.ModeCharDevice != 0 {
			n.typ = tar.TypeChar
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			dev := uint64(st.Rdev)
			n.devMajor = int64(((dev >> 8) & 0xfff) | ((dev >> 32) & 0xfffff000))
			n.devMinor = int64((dev & 0xff) | ((dev >> 12) & 0xffffff00))
		}
	default:
		return nil, nil
	}
	return n, nil
}

// tree reads the context into a tree, without the ignored entries.
func (cx *buildContext) tree(ctx context.Context) (*fsTree, error) {
	t := newTree()
	if st, err := os.Stat(cx.dir); err == nil {
		t.root.mtime = st.ModTime().Truncate(time.Second)
	}
	err := cx.walk(ctx, func(rel, abs string, fi fs.FileInfo) error {
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
		return nil, contextError(err)
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

// writeTar writes the context as a tar stream.
func (cx *buildContext) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	seen := map[string]bool{}
	write := func(rel, abs string, fi fs.FileInfo) error {
		n, err := cx.node(rel, abs, fi)
		if err != nil || n == nil {
			return err
		}
		seen[rel] = true
		if err := tw.WriteHeader(n.header(rel)); err != nil {
			return err
		}
		if n.typ != tar.TypeReg {
			return nil
		}
		rc, err := n.data.open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.CopyN(tw, rc, n.size); err != nil {
			return fmt.Errorf("reading %s: %w (did it change during the build?)", abs, err)
		}
		return nil
	}
	if err := cx.walk(context.Background(), write); err != nil {
		return contextError(err)
	}
	for _, rel := range cx.forced {
		if seen[rel] {
			continue
		}
		abs := filepath.Join(cx.dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(abs)
		if err != nil {
			return contextError(err)
		}
		if err := write(rel, abs, fi); err != nil {
			return contextError(err)
		}
	}
	return tw.Close()
}

// contextError classifies an error met while reading the context: the
// user can fix permissions and vanished files; anything else is the disk.
func contextError(err error) error {
	if errdefs.Category(err) != nil {
		return err
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
		return errdefs.Invalid("reading the build context: %w", err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errdefs.Unavailable("reading the build context: %w", err)
}
