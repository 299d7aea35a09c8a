package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/unpack"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

// Runtime is what RUN needs of the container runtime: the daemon passes
// its own (runc under conmon), so a build step is a container like any
// other.
type Runtime interface {
	Create(ctx context.Context, id string, spec *specs.Spec, opts runtime.CreateOpts) (pid int, err error)
	Start(ctx context.Context, id string) error
	Wait(ctx context.Context, id string) (runtime.ExitStatus, error)
	Attach(ctx context.Context, id string, stdin bool) (runtime.Attachment, error)
	Delete(ctx context.Context, id string) error
}

// tailLines is how many of a failing step's last output lines its error
// shows.
const tailLines = 10

// runArgs returns the command line of a RUN: the exec form as written, the
// shell form (and heredocs, as BuildKit runs them) after SHELL or
// /bin/sh -c.
func (b *builder) runArgs(s *stage, c *instructions.RunCommand) ([]string, error) {
	line := c.ShellDependantCmdLine
	if len(line.Files) > 0 {
		if len(line.CmdLine) != 1 || !line.PrependShell {
			return nil, errdefs.Invalid("RUN: a heredoc needs the shell form (RUN <<EOF)")
		}
		if h := parser.MustParseHeredoc(line.CmdLine[0]); h != nil {
			data := line.Files[0].Data
			if line.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				return nil, errdefs.Invalid("RUN <<%s: a heredoc starting with #! is not supported yet: drop the #! line (the script runs in the stage's SHELL) or COPY the script and RUN it", h.Name)
			}
			line.CmdLine = []string{data}
		} else {
			full := line.CmdLine[0]
			for _, f := range line.Files {
				full += "\n" + f.Data + f.Name
			}
			line.CmdLine = []string{full}
		}
	}
	args := b.withShell(s, line)
	if len(args) == 0 || args[0] == "" {
		return nil, errdefs.Invalid("RUN: the command is empty")
	}
	return args, nil
}

// checkRunFlags refuses the RUN flags skiff does not implement; --mount
// and --network are checked when the step runs.
func checkRunFlags(c *instructions.RunCommand) error {
	for _, f := range c.FlagsUsed {
		switch f {
		case "mount", "network":
		default:
			return errdefs.Invalid("RUN --%s is not supported yet", f)
		}
	}
	return nil
}

// runEnv is the environment of a RUN: the stage's ENV, then the ARGs the
// stage declared that no ENV overrides.
func runEnv(s *stage) []string {
	var extra []string
	for _, k := range s.args.Keys() {
		if _, ok := envLookup(s.cfg.Config.Env, k); ok {
			continue
		}
		v, _ := s.args.Get(k)
		extra = append(extra, k+"="+v)
	}
	return extra
}

// runStep runs a RUN instruction in a container over the stage's
// filesystem and adds what it changed as a layer. Whatever happens, the
// container, its mount and its directories are gone on return.
func (b *builder) runStep(ctx context.Context, s *stage, c *instructions.RunCommand) error {
	if err := checkRunFlags(c); err != nil {
		return err
	}
	network, err := b.stepNetwork(c)
	if err != nil {
		return err
	}
	if err := b.checkMounts(s, c); err != nil {
		return err
	}
	args, err := b.runArgs(s, c)
	if err != nil {
		return err
	}
	if b.opts.Runtime == nil {
		return errdefs.Invalid("RUN needs a container runtime, and this build has none: build through the skiff daemon")
	}
	createdBy := "RUN " + strings.Join(args, " ")
	key, err := b.runKey(ctx, s, c, args)
	if err != nil {
		return err
	}
	if hit, err := b.cached(ctx, s, key, createdBy); hit || err != nil {
		return err
	}
	lowers, err := b.layerDirs(ctx, s.layers)
	if err != nil {
		return err
	}
	step, err := b.newStepDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(step.dir)
	mounts, err := b.prepareMounts(ctx, s, step, c)
	if err != nil {
		return err
	}
	err = b.runContainer(ctx, s, step, lowers, args, mounts, network)
	mounts.close()
	if err != nil {
		return err
	}
	l, err := b.diffLayer(ctx, step.upper)
	if err != nil {
		return err
	}
	if l == nil {
		b.remember(ctx, key, nil, time.Time{})
		s.history(createdBy, false)
		return nil
	}
	b.remember(ctx, key, l, time.Time{})
	// The upper directory holds the change in the form overlayfs reads a
	// lower in: it becomes this layer's directory for later steps.
	chain, err := b.chainOf(s.layers, l)
	if err != nil {
		return err
	}
	b.runMu.Lock()
	dir := filepath.Join(b.runDir, "layers", strconv.Itoa(len(b.chains)))
	err = os.Rename(step.upper, dir)
	if err == nil {
		b.chains[chain] = dir
		if !l.unfit && b.opts.Commit != nil {
			l.dir = dir
			b.unpacked = append(b.unpacked, l)
		}
	}
	b.runMu.Unlock()
	if err != nil {
		return errdefs.Unavailable("keeping the step's changes: %w", err)
	}
	s.layers = append(s.layers, l)
	s.history(createdBy, true)
	if s.tree != nil {
		if err := s.tree.applyLayerOf(ctx, l, b.nextGen()); err != nil {
			return errdefs.Unavailable("reading the step's layer: %w", err)
		}
	}
	return nil
}

// stepDir is the directory of one RUN container.
type stepDir struct {
	id, dir, upper, work, rootfs string
}

func (b *builder) newStepDir() (stepDir, error) {
	b.runMu.Lock()
	defer b.runMu.Unlock()
	if err := b.ensureRunDir(); err != nil {
		return stepDir{}, err
	}
	var r [6]byte
	rand.Read(r[:])
	id := "skiff-build-" + hex.EncodeToString(r[:])
	dir := filepath.Join(b.runDir, "steps", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return stepDir{}, errdefs.Unavailable("creating the build container's directory: %w", err)
	}
	return stepDir{id: id, dir: dir, upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work"), rootfs: filepath.Join(dir, "rootfs")}, nil
}

// ensureRunDir creates the build's private directory under WorkDir; the
// caller holds runMu.
func (b *builder) ensureRunDir() error {
	if b.runDir != "" {
		return nil
	}
	base := b.opts.WorkDir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return errdefs.Unavailable("creating the build directory: %w", err)
	}
	dir, err := os.MkdirTemp(base, "run-")
	if err != nil {
		return errdefs.Unavailable("creating the build directory: %w", err)
	}
	// layers/ holds the build's own layer directories: the steps' upper
	// directories move there even when no layer had to be unpacked.
	if err := os.Mkdir(filepath.Join(dir, "layers"), 0o700); err != nil {
		os.RemoveAll(dir)
		return errdefs.Unavailable("creating the build directory: %w", err)
	}
	b.runDir = dir
	b.chains = map[string]string{}
	return nil
}

// cleanupRun removes the build's directory (unpacked layers, steps).
func (b *builder) cleanupRun() {
	for _, l := range b.unpacked {
		l.dir = ""
	}
	if b.runDir != "" {
		os.RemoveAll(b.runDir)
	}
}

// unpackDir returns a new empty directory for a COPY or ADD layer to be
// unpacked into while it is written, or "" when the build has no
// Options.Commit to hand it to.
func (b *builder) unpackDir() (string, error) {
	if b.opts.Commit == nil {
		return "", nil
	}
	b.runMu.Lock()
	err := b.ensureRunDir()
	b.runMu.Unlock()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(b.runDir, "layers")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", errdefs.Unavailable("creating the build directory: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "copy-")
	if err != nil {
		return "", errdefs.Unavailable("creating the build directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", errdefs.Unavailable("creating the build directory: %w", err)
	}
	return dir, nil
}

// keepUnpacked records the directory of a layer written with unpackDir:
// later RUN steps of the build stack on it, and Commit's store takes it.
func (b *builder) keepUnpacked(s *stage, l *fileLayer) error {
	if l.dir == "" {
		return nil
	}
	chain, err := b.chainOf(s.layers, l)
	if err != nil {
		return err
	}
	b.runMu.Lock()
	defer b.runMu.Unlock()
	if _, ok := b.chains[chain]; !ok {
		b.chains[chain] = l.dir
	}
	b.unpacked = append(b.unpacked, l)
	return nil
}

// chainID extends a layer chain ID with the next layer's diff ID.
func chainID(parent string, diffID v1.Hash) string {
	if parent == "" {
		return diffID.String()
	}
	h := sha256.Sum256([]byte(parent + " " + diffID.String()))
	return "sha256:" + hex.EncodeToString(h[:])
}

// chainOf is the chain ID of layers followed by top.
func (b *builder) chainOf(layers []v1.Layer, top v1.Layer) (string, error) {
	chain := ""
	for _, l := range append(slices.Clone(layers), top) {
		d, err := l.DiffID()
		if err != nil {
			return "", errdefs.Unavailable("reading a layer's digest: %w", err)
		}
		chain = chainID(chain, d)
	}
	return chain, nil
}

// layerDirs unpacks layers (once per build each) and returns their
// directories, top first, for overlayfs.
func (b *builder) layerDirs(ctx context.Context, layers []v1.Layer) ([]string, error) {
	b.runMu.Lock()
	defer b.runMu.Unlock()
	if err := b.ensureRunDir(); err != nil {
		return nil, err
	}
	var dirs []string // bottom first
	chain := ""
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, errdefs.Unavailable("reading layer %d: %w", i+1, err)
		}
		chain = chainID(chain, d)
		dir, ok := b.chains[chain]
		if held, isHeld := b.held[chain]; !ok && isHeld {
			dir, ok = held, true
			b.chains[chain] = dir
		}
		if !ok {
			dir = filepath.Join(b.runDir, "layers", strconv.Itoa(len(b.chains)))
			if err := b.unpackLayer(ctx, l, dir, dirs); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("unpacking layer %d for RUN: %w", i+1, err)
			}
			b.chains[chain] = dir
		}
		dirs = append(dirs, dir)
	}
	slices.Reverse(dirs)
	return dirs, nil
}

func (b *builder) unpackLayer(ctx context.Context, l v1.Layer, dir string, below []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return errdefs.Unavailable("%w", err)
	}
	defer rc.Close()
	lowers := slices.Clone(below)
	slices.Reverse(lowers)
	_, err = unpack.Apply(ctx, dir, rc, unpack.Options{Lowers: lowers})
	return err
}

// runContainer mounts the step's root filesystem, runs args in it as the
// stage's USER in its WORKDIR and environment, with the step's mounts
// and on its network, and waits for it. A non-zero exit is an error with
// the last output lines.
func (b *builder) runContainer(ctx context.Context, s *stage, step stepDir, lowers []string, args []string, sm *stepMounts, network string) (err error) {
	if err := rootfs.Mount(lowers, step.upper, step.work, step.rootfs); err != nil {
		return errdefs.Unavailable("mounting the build container's filesystem: %w", err)
	}
	mounted := true
	defer func() {
		if mounted {
			rootfs.Unmount(step.rootfs)
		}
	}()
	hostname := step.id[len("skiff-build-"):]
	netns, netMounts, err := b.stepNetNS(ctx, step, hostname, network)
	if err != nil {
		return err
	}
	if netns != "" {
		defer b.opts.Networks.Teardown(context.WithoutCancel(ctx), step.id)
	}
	cfg := s.cfg.Config
	spec, err := oci.Spec(oci.Input{
		ID: step.id, Hostname: hostname, Rootfs: step.rootfs, NetNS: netns,
		Image:       v1.Config{Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User},
		Config:      api.ContainerConfig{Entrypoint: []string{}, Cmd: args, Env: append(runEnv(s), sm.env...)},
		Mounts:      parentsFirst(append(netMounts, sm.mounts...)),
		HostRlimits: true, HostCapabilities: true, HostArches: true,
	})
	if err != nil {
		return err
	}
	missing := missingMountpoints(step.rootfs, spec.Mounts)
	logPath := filepath.Join(step.dir, "output.log")
	rt := b.opts.Runtime
	// Create is not cancelled: a create abandoned half-way can leave the
	// runtime's state behind; a cancelled build deletes the container.
	if _, err := rt.Create(context.WithoutCancel(ctx), step.id, spec, runtime.CreateOpts{Bundle: step.dir, LogPath: logPath}); err != nil {
		return err
	}
	defer rt.Delete(context.WithoutCancel(ctx), step.id)
	// Attached before the start, so no output is missed.
	att, err := rt.Attach(ctx, step.id, false)
	if err != nil {
		return err
	}
	defer att.Close()
	out := &outputLines{emit: func(l string) { b.output(s, l) }}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		for {
			_, p, err := att.ReadOutput()
			if err != nil {
				return
			}
			out.write(p)
		}
	}()
	if err := rt.Start(ctx, step.id); err != nil {
		return err
	}
	st, err := rt.Wait(ctx, step.id)
	if err != nil {
		return err
	}
	select {
	case <-copied:
	case <-time.After(outputGrace):
		att.Close()
		<-copied
	}
	tail := out.finish()
	if err := rt.Delete(context.WithoutCancel(ctx), step.id); err != nil {
		return err
	}
	mounted = false
	if err := rootfs.Unmount(step.rootfs); err != nil {
		return errdefs.Unavailable("unmounting the build container's filesystem: %w", err)
	}
	if st.Code != 0 {
		msg := fmt.Sprintf("the command %q exited with code %d", strings.Join(args, " "), st.Code)
		if st.OOMKilled {
			msg += " (killed: out of memory)"
		}
		if len(tail) > 0 {
			msg += "; its last output:\n  " + strings.Join(tail, "\n  ")
		} else {
			msg += " and printed nothing"
		}
		return errdefs.Invalid("%s", msg)
	}
	pruneMountpoints(step.upper, missing)
	pruneCopiedUp(step.upper, lowers, missing)
	return nil
}

// outputGrace bounds the wait for a step's last output once it exited.
const outputGrace = 5 * time.Second

// outputLines passes a step's output to emit line by line and keeps its
// last lines.
type outputLines struct {
	emit    func(line string)
	partial []byte
	tail    []string
}

func (o *outputLines) write(p []byte) {
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			return
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
}

func (o *outputLines) line(l string) {
	if o.emit != nil {
		o.emit(l)
	}
	o.tail = append(o.tail, l)
	if len(o.tail) > tailLines {
		o.tail = o.tail[1:]
	}
}

// finish flushes a last line without a newline and returns the last lines.
func (o *outputLines) finish() []string {
	if len(o.partial) > 0 {
		o.line(string(o.partial))
		o.partial = nil
	}
	return o.tail
}

// missingMountpoints returns the mount destinations the image lacks,
// and the missing directories on their way: the runtime creates them in
// the upper directory, and they are no change of the step's.
func missingMountpoints(root string, mounts []specs.Mount) []string {
	var missing []string
	seen := map[string]bool{}
	for _, m := range mounts {
		dest := path.Clean("/" + m.Destination)
		for p := dest; p != "/" && !seen[p]; p = path.Dir(p) {
			seen[p] = true
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				break
			}
			missing = append(missing, p)
		}
	}
	return missing
}

// pruneMountpoints removes from upper the mount points the runtime
// created (missing), deepest first, when they are still empty.
func pruneMountpoints(upper string, missing []string) {
	slices.SortFunc(missing, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, m := range missing {
		if !symlinkFree(upper, m) {
			continue
		}
		p := filepath.Join(upper, m)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() || (fi.Mode().IsRegular() && fi.Size() == 0) {
			os.Remove(p) // fails, as it should, on a directory the step filled
		}
	}
}

// pruneCopiedUp removes from upper the directories overlayfs copied up
// only because the runtime made a mount point in them (the parents of
// missing): those left empty, not opaque, with no extended attributes
// of their own and the mode and owner of the lower directory they copy.
// Their mtime alone changed, by the runtime's doing, so a step that
// changed nothing adds no layer.
func pruneCopiedUp(upper string, lowers, missing []string) {
	var parents []string
	for _, m := range missing {
		if p := path.Dir(path.Clean("/" + m)); p != "/" && !slices.Contains(missing, p) && !slices.Contains(parents, p) {
			parents = append(parents, p)
		}
	}
	slices.SortFunc(parents, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for len(parents) > 0 {
		p := parents[0]
		parents = parents[1:]
		if !symlinkFree(upper, p) || !copiedUpOnly(filepath.Join(upper, p), lowers, p) {
			continue
		}
		if os.Remove(filepath.Join(upper, p)) != nil {
			continue
		}
		if up := path.Dir(p); up != "/" && !slices.Contains(parents, up) {
			parents = append(parents, up)
		}
	}
}

// copiedUpOnly reports whether the upper directory dir is an empty copy
// of rel in the top-most lower holding it.
func copiedUpOnly(dir string, lowers []string, rel string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || isOpaque(dir) {
		return false
	}
	if names, err := os.ReadDir(dir); err != nil || len(names) > 0 {
		return false
	}
	if x, err := unpack.Xattrs(dir); err != nil || len(x) > 0 {
		return false
	}
	for _, l := range lowers {
		if !symlinkFree(l, rel) {
			return false
		}
		lfi, err := os.Lstat(filepath.Join(l, rel))
		if err != nil {
			continue
		}
		a, b := fi.Sys().(*syscall.Stat_t), lfi.Sys().(*syscall.Stat_t)
		return lfi.IsDir() && fi.Mode() == lfi.Mode() && a.Uid == b.Uid && a.Gid == b.Gid
	}
	return false
}

// symlinkFree reports whether no directory on the way from root to rel is
// a symbolic link, so that rel names a file inside root.
func symlinkFree(root, rel string) bool {
	p := root
	parts := strings.Split(strings.Trim(filepath.Clean("/"+rel), "/"), "/")
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}
