package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

// RUN --mount (BuildKit's syntax, parsed by BuildKit's instructions
// package): what each mount type becomes in the step's container.
//
//   - cache: a directory under Options.CacheDir, keyed by its id (default
//     the target), created with mode/uid/gid (empty, or a copy of source=
//     in from=; without from=, source= is a directory inside it) and
//     kept between builds;
//     sharing=shared lets steps use it at once, locked makes them wait,
//     private gives a step that finds it busy a fresh, discarded one.
//   - secret: Options.Secrets[id] as a read-only file (default
//     /run/secrets/ID, mode 0400) and/or an environment variable (env=);
//     a missing secret is an error when the mount is required, else the
//     mount is left out.
//   - bind: a directory or file of the context (default), of an earlier
//     stage or of an image (from=), read-only unless rw; writes to an rw
//     mount go to a throwaway overlay and are lost after the step.
//   - tmpfs: an empty tmpfs (size= bounds it).
//
// None of them is part of the step's layer: the runtime mounts them over
// the root filesystem, and the mount points it had to create are
// removed from the layer again (pruneMountpoints).

// maxSecretSize bounds one secret's value, as BuildKit does.
const maxSecretSize = 500 << 10

// Network modes of RUN steps.
const (
	networkDefault = "default"
	networkNone    = "none"
)

// Networks attaches build containers to skiff's default network.
type Networks interface {
	// Setup puts the container id on the default network, writes the
	// files "hosts", "resolv.conf" and "hostname" into filesDir, and
	// returns the path of the network namespace the container joins.
	Setup(ctx context.Context, id, hostname, filesDir string) (netns string, err error)
	// Teardown removes what Setup made; it is safe to call after a
	// Setup that failed.
	Teardown(ctx context.Context, id string) error
}

// checkNetwork validates a build's network mode and returns it,
// "default" when empty.
func checkNetwork(mode string) (string, error) {
	switch mode {
	case "", networkDefault:
		return networkDefault, nil
	case networkNone:
		return networkNone, nil
	case "host":
		return "", errdefs.Invalid("build network %q is not supported: build steps never share the host's network; use default (skiff's default network) or none (loopback only)", mode)
	}
	return "", errdefs.Invalid("unknown build network %q: use default (skiff's default network) or none (loopback only)", mode)
}

// stepNetwork is the network of a RUN: --network=none, or the build's.
func (b *builder) stepNetwork(c *instructions.RunCommand) (string, error) {
	switch n := instructions.GetNetwork(c); n {
	case instructions.NetworkNone:
		return networkNone, nil
	case instructions.NetworkDefault:
		return checkNetwork(b.opts.Network)
	default:
		return "", errdefs.Invalid("RUN --network=%s is not supported: build steps never share the host's network; use --network=default or --network=none", n)
	}
}

// rawMounts parses a RUN's --mount flags without expanding variables
// (from= takes none anyway), so the stages they name are known before
// any stage is built. Later, expand parses them again with values.
func rawMounts(c *instructions.RunCommand) ([]*instructions.Mount, error) {
	if !slices.Contains(c.FlagsUsed, "mount") {
		return nil, nil
	}
	if err := c.Expand(func(w string) (string, error) { return w, nil }); err != nil {
		return nil, errdefs.Invalid("RUN --mount: %w", err)
	}
	return instructions.GetMounts(c), nil
}

// mountDeps returns the earlier stages the mounts of a RUN in stage
// index read (from=).
func (b *builder) mountDeps(c *instructions.RunCommand, index int) ([]*stage, error) {
	mounts, err := rawMounts(c)
	if err != nil {
		return nil, err
	}
	var deps []*stage
	for _, m := range mounts {
		if m.From == "" || m.Type == instructions.MountTypeSecret || m.Type == instructions.MountTypeTmpfs {
			continue
		}
		dep, _, err := b.stageOrImage("RUN --mount from", m.From, index)
		if err != nil {
			return nil, err
		}
		if dep != nil {
			deps = append(deps, dep)
		}
	}
	return deps, nil
}

// stepMounts is what a RUN's mounts add to its container, and how to
// undo it.
type stepMounts struct {
	mounts  []specs.Mount
	env     []string // secrets given as variables
	release []func() // run in reverse order once the container is gone
}

func (m *stepMounts) close() {
	for i := len(m.release) - 1; i >= 0; i-- {
		m.release[i]()
	}
	m.release = nil
}

// checkMounts refuses what is wrong with a RUN's --mount flags (already
// expanded) before anything is made: a missing or root target, two
// mounts on one target, what skiff does not support, a required secret
// the build was not given.
func (b *builder) checkMounts(s *stage, c *instructions.RunCommand) error {
	if !slices.Contains(c.FlagsUsed, "mount") {
		return nil
	}
	seen := map[string]bool{}
	for _, m := range instructions.GetMounts(c) {
		what := "RUN --mount=type=" + string(m.Type)
		target, err := mountTarget(s, m)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if target != "" && seen[target] {
			return errdefs.Invalid("%s: two mounts have the target %s: give each its own", what, target)
		}
		seen[target] = true
		switch m.Type {
		case instructions.MountTypeCache:
			if b.opts.CacheDir == "" {
				return errdefs.Invalid("%s: this build has no cache directory: build through the skiff daemon", what)
			}
		case instructions.MountTypeSecret:
			id := secretID(m)
			if err := api.CheckBuildSecretID(id); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if _, ok := b.opts.Secrets[id]; !ok && m.Required {
				return errdefs.Invalid("%s: secret %q is required but was not given: pass it with skiff image build --secret id=%s,src=FILE (or env=VARIABLE)", what, id, id)
			}
		case instructions.MountTypeBind, instructions.MountTypeTmpfs:
		default:
			return errdefs.Invalid("%s is not supported: use cache, secret, bind or tmpfs", what)
		}
	}
	return nil
}

// prepareMounts makes the sources of a RUN's --mount flags (already
// expanded) for the step in step.dir. On error, what it made is undone.
func (b *builder) prepareMounts(ctx context.Context, s *stage, step stepDir, c *instructions.RunCommand) (_ *stepMounts, err error) {
	sm := &stepMounts{}
	defer func() {
		if err != nil {
			sm.close()
		}
	}()
	if !slices.Contains(c.FlagsUsed, "mount") {
		return sm, nil
	}
	for i, m := range instructions.GetMounts(c) {
		what := "RUN --mount=type=" + string(m.Type)
		target, err := mountTarget(s, m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			err = b.cacheMount(ctx, s, sm, step, i, m, target)
		case instructions.MountTypeSecret:
			err = b.secretMount(sm, step, i, m, target)
		case instructions.MountTypeBind:
			err = b.bindMount(ctx, s, sm, step, i, m, target)
		case instructions.MountTypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.SizeLimit > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
			}
			sm.mounts = append(sm.mounts, specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		}
		if err != nil {
			if errdefs.Category(err) == nil && ctx.Err() == nil {
				err = errdefs.Unavailable("%w", err)
			}
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return sm, nil
}

// parentsFirst sorts mounts so that one inside another's target comes
// after it and is not hidden by it; the order is otherwise kept.
func parentsFirst(mounts []specs.Mount) []specs.Mount {
	slices.SortStableFunc(mounts, func(a, b specs.Mount) int {
		return strings.Count(path.Clean(a.Destination), "/") - strings.Count(path.Clean(b.Destination), "/")
	})
	return mounts
}

// mountTarget is the absolute target of a mount (relative ones are taken
// from the WORKDIR, as BuildKit does); "" for a secret given only as a
// variable.
func mountTarget(s *stage, m *instructions.Mount) (string, error) {
	t := m.Target
	if m.Type == instructions.MountTypeSecret && t == "" {
		if m.Env != nil {
			return "", nil
		}
		t = "/run/secrets/" + path.Base(secretID(m))
	}
	if t == "" {
		return "", errdefs.Invalid("the mount has no target: add target=/path")
	}
	if !path.IsAbs(t) {
		wd := s.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		t = path.Join(wd, t)
	}
	t = path.Clean(t)
	if t == "/" {
		return "", errdefs.Invalid("target=%s would hide the whole root filesystem: mount on a directory below /", m.Target)
	}
	return t, nil
}

// cacheMount adds a cache directory, creating it the first time (empty,
// or a copy of source= in from=) and holding the lock its sharing mode
// asks for while the step runs. Without from=, source= is a directory
// inside the cache.
func (b *builder) cacheMount(ctx context.Context, s *stage, sm *stepMounts, step stepDir, i int, m *instructions.Mount, target string) error {
	id := m.CacheID
	if id == "" {
		id = target
	}
	sum := sha256.Sum256([]byte(id))
	key := hex.EncodeToString(sum[:])
	if err := os.MkdirAll(b.opts.CacheDir, 0o700); err != nil {
		return err
	}
	lockPath := filepath.Join(b.opts.CacheDir, key+".lock")
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.opts.CacheDir, key)
	switch m.CacheSharing {
	case instructions.MountSharingLocked:
		err = flockWait(ctx, lock, unix.LOCK_EX)
	case instructions.MountSharingPrivate:
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			// Busy: this step gets a cache of its own, dropped after it.
			lock.Close()
			lock = nil
			if dir, err = os.MkdirTemp(b.opts.CacheDir, "private-"); err != nil {
				return err
			}
			private := dir
			sm.release = append(sm.release, func() { os.RemoveAll(private) })
			os.Remove(dir) // made again below, with the mount's owner and mode
		}
	default:
		err = flockWait(ctx, lock, unix.LOCK_SH)
	}
	if err != nil {
		lock.Close()
		return err
	}
	if lock != nil {
		sm.release = append(sm.release, func() { lock.Close() })
	}
	if err := b.makeCacheDir(ctx, s, sm, step, i, m, dir); err != nil {
		return err
	}
	src := dir
	if m.From == "" && m.Source != "" {
		if src, err = mkdirIn(dir, m.Source); err != nil {
			return err
		}
	}
	sm.mounts = append(sm.mounts, specs.Mount{Destination: target, Type: "bind", Source: src, Options: bindOptions(m.ReadOnly)})
	return nil
}

// makeCacheDir creates a cache directory that does not exist yet: empty,
// or a copy of the directory source= of from=, made aside and renamed
// into place so that a step never sees half a copy.
func (b *builder) makeCacheDir(ctx context.Context, s *stage, sm *stepMounts, step stepDir, i int, m *instructions.Mount, dir string) error {
	if _, err := os.Lstat(dir); err == nil || m.From == "" {
		return makeDir(dir, m.Mode, m.UID, m.GID, 0o755)
	}
	root, err := b.mountTree(ctx, s, sm, step, i, m.From)
	if err != nil {
		return err
	}
	src, err := resolveIn(root, m.Source)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return errdefs.Invalid("source=%s of from=%s is not a directory: a cache mount starts from a directory", path.Clean("/"+m.Source), m.From)
	}
	seed, err := os.MkdirTemp(b.opts.CacheDir, "seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(seed)
	if err := fsutil.CopyTree(ctx, src, seed); err != nil {
		return fmt.Errorf("copying from=%s into the cache: %w", m.From, err)
	}
	if m.Mode != nil || m.UID != nil || m.GID != nil {
		fi, _ := os.Stat(src)
		st := fi.Sys().(*syscall.Stat_t)
		uid, gid, mode := uint64(st.Uid), uint64(st.Gid), uint64(fi.Mode().Perm())
		if m.UID != nil {
			uid = *m.UID
		}
		if m.GID != nil {
			gid = *m.GID
		}
		if m.Mode != nil {
			mode = *m.Mode
		}
		if err := os.Lchown(seed, int(uid), int(gid)); err != nil {
			return err
		}
		if err := os.Chmod(seed, os.FileMode(mode)&os.ModePerm); err != nil {
			return err
		}
	}
	if err := os.Rename(seed, dir); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	return nil
}

// mkdirIn creates the directory name inside root, and those on its way,
// without following any symbolic link (a step may have left some in a
// cache), and returns its host path.
func mkdirIn(root, name string) (string, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	for _, c := range strings.Split(strings.Trim(path.Clean("/"+name), "/"), "/") {
		if c == "" {
			continue
		}
		if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return "", err
		}
		next, err := unix.Openat2(fd, c, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		unix.Close(fd)
		if err != nil {
			return "", errdefs.Invalid("source=%s: %s in the cache is not a directory", path.Clean("/"+name), c)
		}
		fd = next
	}
	defer unix.Close(fd)
	found, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if found != root && !strings.HasPrefix(found, root+"/") {
		return "", errdefs.Invalid("source=%s leads outside the cache", path.Clean("/"+name))
	}
	return found, nil
}

// flockWait takes a lock on f, waiting for it as long as ctx lets.
func flockWait(ctx context.Context, f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// makeDir creates dir if missing, with mode (default def) and owner.
func makeDir(dir string, mode, uid, gid *uint64, def os.FileMode) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	perm := def
	if mode != nil {
		perm = os.FileMode(*mode) & os.ModePerm
	}
	if err := os.Lchown(dir, idOr(uid), idOr(gid)); err != nil {
		return err
	}
	return os.Chmod(dir, perm)
}

func idOr(id *uint64) int {
	if id == nil {
		return 0
	}
	return int(*id)
}

func bindOptions(readOnly bool) []string {
	opts := []string{"rbind", "rprivate", "nosuid", "nodev"}
	if readOnly {
		opts = append(opts, "ro")
	}
	return opts
}

// secretID is the id of a secret mount: id=, source=, or the target's
// base name, as BuildKit has it.
func secretID(m *instructions.Mount) string {
	switch {
	case m.Source != "":
		return m.Source
	case m.CacheID != "":
		return m.CacheID
	}
	return path.Base(m.Target)
}

// secretMount adds a secret as a read-only file written under the step's
// private directory (removed with it) and/or as a variable.
func (b *builder) secretMount(sm *stepMounts, step stepDir, i int, m *instructions.Mount, target string) error {
	id := secretID(m)
	val, ok := b.opts.Secrets[id]
	if !ok {
		return nil // not required (checkMounts)
	}
	if m.Env != nil {
		name := *m.Env
		if name == "" {
			name = id
		}
		sm.env = append(sm.env, name+"="+string(val))
	}
	if target == "" {
		return nil
	}
	dir := filepath.Join(step.dir, "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	file := filepath.Join(dir, strconv.Itoa(i))
	if err := os.WriteFile(file, val, 0o600); err != nil {
		return err
	}
	sm.release = append(sm.release, func() { os.Remove(file) })
	mode := os.FileMode(0o400)
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode) & os.ModePerm
	}
	if err := os.Lchown(file, idOr(m.UID), idOr(m.GID)); err != nil {
		return err
	}
	if err := os.Chmod(file, mode); err != nil {
		return err
	}
	sm.mounts = append(sm.mounts, specs.Mount{Destination: target, Type: "bind", Source: file, Options: bindOptions(true)})
	return nil
}

// bindMount adds a directory or file of the context, a stage or an
// image. The source tree is mounted as an overlay with a throwaway upper
// directory, so an rw mount changes nothing outside the step, and the
// source path is resolved inside that tree.
func (b *builder) bindMount(ctx context.Context, s *stage, sm *stepMounts, step stepDir, i int, m *instructions.Mount, target string) error {
	root, err := b.mountTree(ctx, s, sm, step, i, m.From)
	if err != nil {
		return err
	}
	src, err := resolveIn(root, m.Source)
	if err != nil {
		return err
	}
	sm.mounts = append(sm.mounts, specs.Mount{Destination: target, Type: "bind", Source: src, Options: bindOptions(m.ReadOnly)})
	return nil
}

// mountTree mounts the tree of from (the context when empty, an earlier
// stage or an image) as an overlay with a throwaway upper directory for
// mount i of the step, and returns where.
func (b *builder) mountTree(ctx context.Context, s *stage, sm *stepMounts, step stepDir, i int, from string) (string, error) {
	var lowers []string
	if from == "" {
		lowers = []string{b.opts.ContextDir}
	} else {
		dep, ref, err := b.stageOrImage("from", from, s.def.index)
		if err != nil {
			return "", err
		}
		var layers []v1.Layer
		switch {
		case dep != nil:
			if err := b.need(ctx, dep); err != nil {
				return "", err
			}
			layers = dep.layers
		case ref != "scratch":
			src, err := b.source(ctx, ref)
			if err != nil {
				return "", err
			}
			layers = src.layers
		}
		if lowers, err = b.layerDirs(ctx, layers); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(step.dir, "mounts", strconv.Itoa(i))
	merged := filepath.Join(dir, "merged")
	if err := rootfs.Mount(lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), merged); err != nil {
		return "", err
	}
	sm.release = append(sm.release, func() { rootfs.Unmount(merged) })
	return merged, nil
}

// resolveIn returns the host path of name inside root, following
// symlinks as if root were /, so that nothing outside root is reached.
func resolveIn(root, name string) (string, error) {
	shown := path.Clean("/" + name)
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	var fd int
	if shown == "/" {
		fd, err = unix.Dup(dir)
	} else {
		fd, err = unix.Openat2(dir, shown[1:], &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return "", errdefs.NotFound("source=%s does not exist in the mounted tree", shown)
		}
		return "", errdefs.Invalid("source=%s: %w", shown, err)
	}
	defer unix.Close(fd)
	found, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if found != root && !strings.HasPrefix(found, root+"/") {
		return "", errdefs.Invalid("source=%s leads outside the mounted tree", shown)
	}
	return found, nil
}

// stepNetNS attaches a step on network "default" to skiff's default
// network and returns the namespace to join and the mounts of its hosts,
// resolv.conf and hostname files. With network "none", or a build
// without Networks, the step gets a namespace of its own with loopback
// only ("", nil).
func (b *builder) stepNetNS(ctx context.Context, step stepDir, hostname, network string) (string, []specs.Mount, error) {
	if network != networkDefault || b.opts.Networks == nil {
		return "", nil, nil
	}
	dir := filepath.Join(step.dir, "net")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, errdefs.Unavailable("creating the build container's network files: %w", err)
	}
	var mounts []specs.Mount
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		src := filepath.Join(dir, f)
		if err := os.WriteFile(src, nil, 0o644); err != nil {
			return "", nil, errdefs.Unavailable("creating the build container's network files: %w", err)
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
	}
	netns, err := b.opts.Networks.Setup(ctx, step.id, hostname, dir)
	if err != nil {
		b.opts.Networks.Teardown(context.WithoutCancel(ctx), step.id)
		return "", nil, fmt.Errorf("attaching the build container to the default network: %w", err)
	}
	return netns, mounts, nil
}
