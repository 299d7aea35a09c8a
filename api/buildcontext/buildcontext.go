// Package buildcontext reads a build context directory the way docker
// does: the Dockerfile, the .dockerignore rules, and the entries those
// rules keep, walked in a fixed order or streamed as the tar the CLI
// uploads to the daemon. The CLI and the daemon's builder share it, so a
// context means the same on both sides.
//
// Open reads the Dockerfile and the ignore file through Options.ReadFile:
// the daemon passes a reader that keeps symbolic links inside the context
// and reads only regular files; the default (the CLI's) reads the user's
// own directory with os.Open. Errors are classified with api/errdefs.
package buildcontext

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
)

// MaxControlFile bounds the Dockerfile and the ignore files.
const MaxControlFile = 4 << 20

// Options say how Open reads the files it needs.
type Options struct {
	// ReadFile reads the regular file rel (slash separated) of the
	// context root, failing past limit bytes; a missing file is an
	// fs.ErrNotExist error. Default: read root/rel from the disk.
	ReadFile func(root, rel string, limit int64) ([]byte, error)
	// Readlink returns the target of rel when it is a symbolic link, to
	// explain a Dockerfile that is missing because its link leads out of
	// the context. Default: none.
	Readlink func(root, rel string) (target string, ok bool)
}

// Context is a build context directory with its ignore rules.
type Context struct {
	Dir            string // absolute path of the context
	Dockerfile     string // the Dockerfile's path relative to Dir, slash separated
	DockerfileData []byte // the Dockerfile's content
	// IgnoreFile is the relative path of the ignore file in use, or "".
	IgnoreFile string
	ignore     *patternmatcher.PatternMatcher
	forced     []string // relative paths always included in the tar
	opts       Options
}

// Open checks dir and the Dockerfile and loads the ignore rules.
//
// dockerfile is the Dockerfile's path relative to dir (or absolute, inside
// dir); empty means dir/Dockerfile. As with docker,
// <Dockerfile>.dockerignore next to the Dockerfile, when present, replaces
// dir/.dockerignore.
func Open(dir, dockerfile string, opts Options) (*Context, error) {
	if dir == "" {
		return nil, errdefs.Invalid("no build context directory given: pass the directory holding the files to COPY (often .)")
	}
	if opts.ReadFile == nil {
		opts.ReadFile = readFile
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
	cx := &Context{Dir: abs, opts: opts}
	dfAbs := dockerfilePath(abs, dockerfile)
	rel, err := filepath.Rel(abs, dfAbs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, errdefs.Invalid("Dockerfile %q is outside the build context %q: move it into the context directory", dockerfile, dir)
	}
	cx.Dockerfile = filepath.ToSlash(rel)
	if cx.DockerfileData, err = opts.ReadFile(cx.Dir, cx.Dockerfile, MaxControlFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("no Dockerfile %q in the build context%s: create one or name it with -f", cx.Dockerfile, cx.linkHint(cx.Dockerfile))
		}
		return nil, errdefs.Invalid("reading the Dockerfile: %w", err)
	}
	cx.forced = append(cx.forced, cx.Dockerfile)
	if err := cx.loadIgnore(); err != nil {
		return nil, err
	}
	return cx, nil
}

// readFile is the default Options.ReadFile.
func readFile(root, rel string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", rel, limit)
	}
	return data, err
}

// linkHint explains that rel is a symlink leading out of the context, or
// is "".
func (cx *Context) linkHint(rel string) string {
	if cx.opts.Readlink == nil {
		return ""
	}
	target, ok := cx.opts.Readlink(cx.Dir, rel)
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
func (cx *Context) loadIgnore() error {
	for _, rel := range []string{cx.Dockerfile + ".dockerignore", ".dockerignore"} {
		data, err := cx.opts.ReadFile(cx.Dir, rel, MaxControlFile)
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
		cx.IgnoreFile = rel
		cx.forced = append(cx.forced, rel)
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

// HasRules reports whether an ignore file with patterns is in use.
func (cx *Context) HasRules() bool { return cx.ignore != nil }

// Ignored reports whether rel (slash separated, relative to the context)
// is excluded by the ignore rules.
func (cx *Context) Ignored(rel string) bool {
	if cx.ignore == nil {
		return false
	}
	ok, err := cx.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// Walk calls fn for every entry of the context the ignore rules keep,
// parents before children and siblings in name order, like docker's
// context tar. An excluded directory holding entries that a "!" pattern
// brings back is reported just before the first of them, so that its
// metadata travels too. rel is slash separated; the root is not reported.
// Errors are classified: permissions and vanished files are ErrInvalid,
// other disk errors ErrUnavailable; a cancelled ctx returns its error.
func (cx *Context) Walk(ctx context.Context, fn func(rel, abs string, fi fs.FileInfo) error) error {
	return classify(cx.walk(ctx, fn))
}

func (cx *Context) walk(ctx context.Context, fn func(rel, abs string, fi fs.FileInfo) error) error {
	type pendingDir struct {
		rel, abs string
		fi       fs.FileInfo
	}
	parents := map[string]patternmatcher.MatchInfo{}
	var pending []pendingDir // excluded directories walked into, outermost first
	return filepath.WalkDir(cx.Dir, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(cx.Dir, abs)
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
				return errdefs.Invalid("%s: %w", cx.IgnoreFile, err)
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
func (cx *Context) keepWalking(rel string) bool {
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

// Header returns the tar header of the context entry rel as it travels
// and as the builder sees it: its mode and mtime (to the second), owned by
// root; nil for sockets, which are left out. abs is read for a symlink's
// target.
func Header(rel, abs string, fi fs.FileInfo) (*tar.Header, error) {
	m := fi.Mode()
	h := &tar.Header{Name: rel, Mode: int64(m.Perm()), ModTime: fi.ModTime().Truncate(time.Second)}
	if m&fs.ModeSetuid != 0 {
		h.Mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		h.Mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		h.Mode |= 0o1000
	}
	switch {
	case m.IsRegular():
		h.Typeflag = tar.TypeReg
		h.Size = fi.Size()
	case m.IsDir():
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case m&fs.ModeSymlink != 0:
		h.Typeflag = tar.TypeSymlink
		target, err := os.Readlink(abs)
		if err != nil {
			return nil, err
		}
		h.Linkname = target
	case m&fs.ModeNamedPipe != 0:
		h.Typeflag = tar.TypeFifo
	case m&fs.ModeDevice != 0:
		h.Typeflag = tar.TypeBlock
		if m&fs.ModeCharDevice != 0 {
			h.Typeflag = tar.TypeChar
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			dev := uint64(st.Rdev)
			h.Devmajor = int64(((dev >> 8) & 0xfff) | ((dev >> 32) & 0xfffff000))
			h.Devminor = int64((dev & 0xff) | ((dev >> 12) & 0xffffff00))
		}
	default:
		return nil, nil
	}
	return h, nil
}

// Tar streams the build context dir as a tar, skipping what .dockerignore
// excludes (the Dockerfile and the ignore file are always included): the
// CLI uploads this to the daemon. dockerfile is as for Open. Errors found
// before streaming (no such dir, no Dockerfile, a bad ignore file) are
// returned at once; later ones surface from Read.
func Tar(dir, dockerfile string) (io.ReadCloser, error) {
	cx, err := Open(dir, dockerfile, Options{})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(cx.WriteTar(pw))
	}()
	return pr, nil
}

// WriteTar writes the context as a tar stream (see Tar).
func (cx *Context) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	seen := map[string]bool{}
	write := func(rel, abs string, fi fs.FileInfo) error {
		h, err := Header(rel, abs, fi)
		if err != nil || h == nil {
			return err
		}
		seen[rel] = true
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(abs)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, h.Size); err != nil {
			return fmt.Errorf("reading %s: %w (did it change during the build?)", abs, err)
		}
		return nil
	}
	if err := cx.Walk(context.Background(), write); err != nil {
		return err
	}
	for _, rel := range cx.forced {
		if seen[rel] {
			continue
		}
		abs := filepath.Join(cx.Dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(abs)
		if err != nil {
			return classify(err)
		}
		if err := write(rel, abs, fi); err != nil {
			return classify(err)
		}
	}
	return tw.Close()
}

// classify classifies an error met while reading the context: the user
// can fix permissions and vanished files; anything else is the disk.
func classify(err error) error {
	if err == nil || errdefs.Category(err) != nil {
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
