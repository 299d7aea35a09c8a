package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"skiff.dev/skiff/api/errdefs"
)

// Cache stores the results of build steps (a layer, or none) by key. The
// daemon's is the image store's build cache.
type Cache interface {
	// Lookup returns the result stored under key: the step's layer (nil
	// when it added none) and the newest mtime in it; ok is false when
	// nothing usable is stored.
	Lookup(key string) (layer v1.Layer, newest time.Time, ok bool)
	// Put stores a step's result under key.
	Put(ctx context.Context, key string, layer v1.Layer, newest time.Time) error
}

// cacheKeyVersion changes whenever what a key covers changes, so older
// entries stop matching.
const cacheKeyVersion = 1

// stepKey is what a layer-making step's result depends on, as BuildKit
// keys its cache: the layers below (by chain ID), the instruction after
// ARG and ENV expansion with the state it reads, and for COPY and ADD
// the content of exactly the files they read.
type stepKey struct {
	Version  int      `json:"v"`
	Parent   string   `json:"parent"` // chain ID of the stage's layers, "" for none
	Platform string   `json:"platform"`
	Op       string   `json:"op"` // the instruction, expanded
	Workdir  string   `json:"workdir,omitempty"`
	User     string   `json:"user,omitempty"`
	Env      []string `json:"env,omitempty"` // RUN: its whole environment
	Network  string   `json:"network,omitempty"`
	Mounts   []string `json:"mounts,omitempty"`
	Sources  string   `json:"sources,omitempty"` // COPY/ADD: digest of what they read
	Epoch    string   `json:"epoch,omitempty"`   // SOURCE_DATE_EPOCH clamps mtimes
}

// cacheKey returns the key of a step of stage s, or "" when this build
// has no cache.
func (b *builder) cacheKey(s *stage, k stepKey) (string, error) {
	if b.opts.Cache == nil {
		return "", nil
	}
	parent, err := chainOfLayers(s.layers)
	if err != nil {
		return "", err
	}
	k.Version, k.Parent, k.Platform = cacheKeyVersion, parent, s.platform.String()
	if b.epoch != nil {
		k.Epoch = strconv.FormatInt(b.epoch.Unix(), 10)
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// chainOfLayers is the chain ID of a layer stack, "" for none.
func chainOfLayers(layers []v1.Layer) (string, error) {
	chain := ""
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return "", errdefs.Unavailable("reading a layer's digest: %w", err)
		}
		chain = chainID(chain, d)
	}
	return chain, nil
}

// cached applies the result stored under key to the stage, when there is
// one and --no-cache was not given, and ends the step as cached. It
// reports whether it did.
func (b *builder) cached(ctx context.Context, s *stage, key, createdBy string) (bool, error) {
	if key == "" || b.opts.NoCache {
		return false, nil
	}
	l, newest, ok := b.opts.Cache.Lookup(key)
	if !ok {
		return false, nil
	}
	b.stepCached(s)
	if l == nil {
		s.history(createdBy, false)
		return true, nil
	}
	if s.tree != nil {
		if err := s.tree.applyLayerOf(ctx, l, b.nextGen()); err != nil {
			return false, errdefs.Unavailable("reading a cached layer: %w", err)
		}
	}
	s.layers = append(s.layers, l)
	s.history(createdBy, true)
	if newest.After(s.created) {
		s.created = newest
	}
	return true, nil
}

// remember stores a step's result under key. The cache only saves work:
// failing to store is a warning, not a failed build.
func (b *builder) remember(ctx context.Context, key string, l v1.Layer, newest time.Time) {
	if key == "" {
		return
	}
	if err := b.opts.Cache.Put(ctx, key, l, newest); err != nil && ctx.Err() == nil {
		b.warn(fmt.Sprintf("the build cache could not keep this step: %v", err))
	}
}

// runKey returns the cache key of a RUN: its command line, environment,
// user, working directory, network mode and mounts (their spec, and for
// mounts of a stage or an image its chain ID, never a secret's value).
func (b *builder) runKey(ctx context.Context, s *stage, c *instructions.RunCommand, args []string) (string, error) {
	if b.opts.Cache == nil {
		return "", nil
	}
	cfg := s.cfg.Config
	network, err := b.stepNetwork(c) // the effective mode, also the build's --network
	if err != nil {
		return "", err
	}
	k := stepKey{
		Op:      "RUN " + jsonString(args),
		Workdir: cfg.WorkingDir, User: cfg.User,
		Env:     append(slices.Clone(cfg.Env), runEnv(s)...),
		Network: network,
	}
	for _, m := range instructions.GetMounts(c) {
		spec, err := json.Marshal(m)
		if err != nil {
			return "", err
		}
		src := ""
		switch {
		case m.From != "":
			src, err = b.fromChain(ctx, s, m.From)
		case m.Type == instructions.MountTypeBind:
			src, err = b.contextDigest(ctx, m.Source)
		}
		if err != nil {
			return "", err
		}
		k.Mounts = append(k.Mounts, string(spec)+" "+src)
	}
	return b.cacheKey(s, k)
}

// fromChain names the content of a --from source by its chain ID: an
// earlier stage (built first) or an image.
func (b *builder) fromChain(ctx context.Context, s *stage, from string) (string, error) {
	dep, ref, err := b.copyFrom(from, s.def.index)
	if err != nil {
		return "", err
	}
	switch {
	case dep != nil:
		if err := b.build(ctx, dep); err != nil {
			return "", err
		}
		c, err := chainOfLayers(dep.layers)
		return "stage:" + c, err
	case ref == "scratch":
		return "scratch", nil
	}
	src, err := b.source(ctx, ref)
	if err != nil {
		return "", err
	}
	c, err := chainOfLayers(src.layers)
	return "image:" + c, err
}

func jsonString(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// sourcesDigest hashes what a COPY or ADD reads from the build context:
// each item's name, and below it every entry's path, type, mode, size,
// link target, mtime, xattrs and content, in name order, skipping what
// --exclude drops. Other context files do not count, so changing them
// keeps the cache.
func (c *copier) sourcesDigest(items []copyItem) (string, error) {
	h := sha256.New()
	for _, it := range items {
		fmt.Fprintf(h, "item %q %q\n", it.src, it.name)
		if err := hashTree(c.ctx, h, it.n, "", it.n.isDir(), c.excluded); err != nil {
			return "", errdefs.Unavailable("%s: %w", c.op.name, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// hashTree writes n (at rel) and, with walk, the entries below it that
// skip does not drop, to h.
func hashTree(ctx context.Context, h hash.Hash, n *node, rel string, walk bool, skip func(rel string) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(h, "%q %c %o %d:%d %d %q %d %d %d\n", rel, n.typ, n.mode, n.uid, n.gid, n.size, n.link, n.mtime.Unix(), n.devMajor, n.devMinor)
	for _, k := range slices.Sorted(maps.Keys(n.pax)) {
		fmt.Fprintf(h, "x %q %q\n", k, n.pax[k])
	}
	if n.typ == tar.TypeReg && n.size > 0 {
		rc, err := n.data.open()
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
	}
	if !walk {
		return nil
	}
	for _, name := range sortedNames(n) {
		r := path.Join(rel, name)
		if skip != nil && skip(r) {
			continue
		}
		if err := hashTree(ctx, h, n.children[name], r, n.children[name].isDir(), skip); err != nil {
			return err
		}
	}
	return nil
}

// contextDigest hashes the context entry at rel and what is below it
// (RUN --mount=type=bind without from=); a missing entry hashes as such,
// for the mount to report.
func (b *builder) contextDigest(ctx context.Context, rel string) (string, error) {
	t, err := b.contextTree(ctx)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, _, err := t.lookup(path.Clean("/"+rel), true)
	if err != nil {
		fmt.Fprintf(h, "missing %q", rel)
	} else if err := hashTree(ctx, h, n, "", n.isDir(), nil); err != nil {
		return "", errdefs.Unavailable("RUN --mount: %w", err)
	}
	return "context:sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
