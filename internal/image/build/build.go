package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Options say what to build.
type Options struct {
	ContextDir string // the build context on disk
	// Dockerfile is the path of the Dockerfile; default
	// <ContextDir>/Dockerfile. A relative path is taken relative to
	// ContextDir.
	Dockerfile string
	// BuildArgs set ARG values. SOURCE_DATE_EPOCH (seconds) also clamps
	// file mtimes and sets the image's creation time, as with BuildKit.
	BuildArgs map[string]string
	Target    string    // stage to build; default the last
	Platform  string    // default linux/<GOARCH>
	Progress  io.Writer // optional: docker-like step lines "STEP 2/5: COPY hello /hello"
	// Runtime runs RUN steps; without one RUN is refused.
	Runtime Runtime
	// WorkDir holds the build's unpacked layers and step containers
	// while it runs (a private directory is made in it and removed at
	// the end); default os.TempDir(). Its path must not hold ',' or ':'.
	WorkDir string

	// Progress as events and image labels (the CLI's --progress and
	// --label).

	// Events, when set, receives the build's progress as structured
	// events, one call at a time; Progress, when set, gets each event's
	// Line().
	Events func(api.BuildEvent)
	// Labels are set in the image config, over the Dockerfile's LABELs.
	Labels map[string]string

	// The layer cache (cache.go).
	// Cache keeps the results of RUN, COPY, ADD and WORKDIR steps
	// between builds; nil builds without a cache.
	Cache Cache
	// NoCache skips cache lookups (results are still stored).
	NoCache bool
	// Pull fetches every FROM and --from image with Puller first, rather
	// than use the local copy.
	Pull   bool
	Puller Puller

	// RUN --mount, secrets and networking (mounts.go).

	// CacheDir keeps the directories of RUN --mount=type=cache between
	// builds; without one, cache mounts are refused.
	CacheDir string
	// Secrets are the values of RUN --mount=type=secret by ID. They are
	// written only to files under WorkDir that live as long as a step.
	Secrets map[string][]byte
	// Network is the network of RUN steps that do not ask for none:
	// "default" (the default) or "none" (loopback only).
	Network string
	// Networks attaches steps to skiff's default network; without one,
	// every step has loopback only.
	Networks Networks

	// Storing the result.
	// Commit, when set, receives the built image before Build removes
	// its work directory. The layers the build unpacked (its RUN steps'
	// upper directories, its COPY and ADD layers, unpacked while they
	// were written) then offer their directories (UnpackedDir) for an
	// image store on WorkDir's file system to move into place, so the
	// image's first run unpacks nothing. Without it they are removed.
	Commit func(ctx context.Context, img v1.Image) error
}

// Puller fetches an image from its registry into the local store.
type Puller interface {
	Pull(ctx context.Context, ref string) error
}

// Images gives the builder read access to local images for FROM and COPY --from=<image>.
// A missing image is an errdefs.ErrNotFound error.
type Images interface {
	Image(ctx context.Context, ref string) (v1.Image, error)
}

// historyComment marks the history entries skiff's builder writes.
const historyComment = "skiff.dockerfile.v0"

// Build builds the image a Dockerfile describes, running its RUN steps
// on opts.Runtime: see the package documentation for what is supported.
func Build(ctx context.Context, opts Options, images Images) (v1.Image, error) {
	b := &builder{opts: opts, images: images, out: opts.Progress, sources: map[string]*imageSource{}, held: map[string]string{}}
	defer b.spool.close()
	defer b.cleanupRun()
	defer b.releaseHeld()
	img, err := b.run(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if errdefs.Category(err) == nil {
			err = errdefs.Unavailable("building the image: %w", err)
		}
		return nil, err
	}
	return img, nil
}

// builder holds the state of one Build.
type builder struct {
	opts     Options
	images   Images
	out      io.Writer
	df       *dockerfile
	cx       *buildContext
	ctxTree  *fsTree
	shlex    *lexer
	global   *kv             // ARGs before the first FROM, and the platform ARGs
	consumed map[string]bool // build args some ARG declared
	target   platform
	epoch    *time.Time
	tmpDir   string
	spool    spool
	gen      atomic.Int64
	sources  map[string]*imageSource
	stages   []*stage
	multi    bool
	runDir   string            // private directory of RUN steps, or ""
	chains   map[string]string // chain ID → unpacked layer directory

	// Stages build in parallel (parallel.go): mu guards what they
	// share (sources and their trees, the context tree, consumed, the
	// trees of finished stages), runMu the RUN directories (runDir,
	// chains), emitMu the progress events.
	mu     sync.Mutex
	runMu  sync.Mutex
	emitMu sync.Mutex
	steps  int           // steps started, for api.BuildEvent.Step
	slots  chan struct{} // one token per stage building at a time

	// unpacked are the layers whose directories Options.Commit may take.
	unpacked []*fileLayer
	// held are the unpacked layer directories of local images the store
	// keeps for the build (chain ID → directory), and releases the
	// functions that let them go.
	held     map[string]string
	releases []func()
}

// stage is the state of one stage while and after it is built.
type stage struct {
	def      *stageDef
	baseName string // FROM after ARG expansion
	base     *stage // FROM <earlier stage>
	platform platform
	deps     []int // stages this one copies from
	cfg      *v1.ConfigFile
	layers   []v1.Layer
	tree     *fsTree   // nil until an instruction needs the filesystem
	args     *kv       // ARGs declared in the stage
	cmdSet   bool      // CMD given in this stage
	created  time.Time // base creation time, then newest mtime written
	ownHist  int       // first history entry this build wrote

	once     sync.Once     // builds the stage (parallel.go)
	finished chan struct{} // closed once built or failed
	err      error         // why the build failed, set before finished closes
	cur      *stepRun      // the running step, or nil
}

func (s *stage) env() stageEnv { return stageEnv{env: s.cfg.Config.Env, args: s.args} }

// printf reports a line about the whole build.
func (b *builder) printf(format string, args ...any) {
	b.emit(api.BuildEvent{Kind: api.BuildMessage, Text: strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")})
}

// warn reports something the Dockerfile should change.
func (b *builder) warn(msg string) { b.emit(api.BuildEvent{Kind: api.BuildWarning, Text: msg}) }

func (b *builder) run(ctx context.Context) (v1.Image, error) {
	cx, err := openContext(b.opts.ContextDir, b.opts.Dockerfile)
	if err != nil {
		return nil, err
	}
	b.cx = cx
	b.tmpDir = os.TempDir()
	b.spool.dir = b.tmpDir
	if b.df, err = parseDockerfile(path.Base(cx.Dockerfile), cx.DockerfileData, b.warn); err != nil {
		return nil, err
	}
	b.shlex = &lexer{l: shell.NewLex(b.df.escape)}
	if _, err := checkNetwork(b.opts.Network); err != nil {
		return nil, err
	}

	b.target = hostPlatform()
	if b.opts.Platform != "" {
		if b.target, err = parsePlatform(b.opts.Platform); err != nil {
			return nil, err
		}
	}
	if err := b.metaArgs(); err != nil {
		return nil, err
	}
	if err := b.plan(); err != nil {
		return nil, err
	}
	target, err := b.targetStage()
	if err != nil {
		return nil, err
	}
	reach := map[int]bool{}
	b.reach(target.def.index, reach)
	b.multi = len(reach) > 1
	if err := b.buildStages(ctx, reach); err != nil {
		return nil, err
	}
	var unused []string
	for k := range b.opts.BuildArgs {
		if !b.consumed[k] && k != "SOURCE_DATE_EPOCH" {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		b.warn(fmt.Sprintf("build-args %v were not consumed by any ARG", unused))
	}
	if len(b.opts.Labels) > 0 {
		if target.cfg.Config.Labels == nil {
			target.cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(target.cfg.Config.Labels, b.opts.Labels)
	}
	img, err := b.image(target)
	if err != nil {
		return nil, err
	}
	if b.opts.Commit != nil {
		if err := b.opts.Commit(ctx, img); err != nil {
			return nil, err
		}
	}
	if id, err := img.ConfigName(); err == nil {
		b.printf("--> %s\n", id)
	}
	return img, nil
}

// metaArgs evaluates the ARGs before the first FROM, with the build args
// and the automatic platform ARGs.
func (b *builder) metaArgs() error {
	b.global = &kv{}
	b.consumed = map[string]bool{}
	platformArgs(b.global, b.target, hostPlatform())
	for _, c := range b.df.metaArgs {
		for _, a := range c.Args {
			b.consumed[a.Key] = true
			if v, ok := b.opts.BuildArgs[a.Key]; ok {
				b.global.Set(a.Key, v)
				continue
			}
			if a.Value == nil {
				continue
			}
			v, _, err := b.shlex.ProcessWord(*a.Value, b.global)
			if err != nil {
				return b.df.errAt(c.Location(), errdefs.Invalid("ARG %s: %w", a.Key, err))
			}
			b.global.Set(a.Key, v)
		}
	}
	epoch, ok := b.opts.BuildArgs["SOURCE_DATE_EPOCH"]
	if !ok {
		epoch, ok = b.global.Get("SOURCE_DATE_EPOCH")
	}
	if ok && epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || sec < 0 {
			return errdefs.Invalid("SOURCE_DATE_EPOCH %q is not a number of seconds since 1970", epoch)
		}
		t := time.Unix(sec, 0).UTC()
		b.epoch = &t
	}
	return nil
}

// plan resolves every stage's base (an earlier stage, scratch or an
// image), its platform and the earlier stages it copies from.
func (b *builder) plan() error {
	for _, def := range b.df.stages {
		s := &stage{def: def, finished: make(chan struct{})}
		baseName, _, err := b.shlex.ProcessWord(def.baseName, b.global)
		if err != nil {
			return b.df.errAt(def.loc, errdefs.Invalid("FROM %s: %w", def.baseName, err))
		}
		if baseName == "" {
			return b.df.errAt(def.loc, errdefs.Invalid("FROM %s: the image name is empty after ARG expansion: give the ARG a default or pass --build-arg", def.baseName))
		}
		s.baseName = baseName
		if prev := b.stageByName(baseName, def.index); prev != nil {
			s.base = prev
		} else if baseName != "scratch" {
			if _, err := name.ParseReference(baseName); err != nil {
				return b.df.errAt(def.loc, errdefs.Invalid("FROM %s: %q is not a valid image reference: %w", def.baseName, baseName, err))
			}
		}
		s.platform = b.target
		if def.platform != "" {
			p, _, err := b.shlex.ProcessWord(def.platform, b.global)
			if err != nil {
				return b.df.errAt(def.loc, errdefs.Invalid("FROM --platform=%s: %w", def.platform, err))
			}
			if s.platform, err = parsePlatform(p); err != nil {
				return b.df.errAt(def.loc, err)
			}
		}
		for _, c := range def.commands {
			if rc, ok := c.(*instructions.RunCommand); ok {
				deps, err := b.mountDeps(rc, def.index)
				if err != nil {
					return b.df.errAt(c.Location(), err)
				}
				for _, d := range deps {
					s.deps = append(s.deps, d.def.index)
				}
				continue
			}
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From == "" {
				continue
			}
			dep, _, err := b.copyFrom(cp.From, def.index)
			if err != nil {
				return b.df.errAt(c.Location(), err)
			}
			if dep != nil {
				s.deps = append(s.deps, dep.def.index)
			}
		}
		b.stages = append(b.stages, s)
	}
	return nil
}

// stageByName returns the stage before index named n, or nil.
func (b *builder) stageByName(n string, before int) *stage {
	for _, s := range b.stages[:min(before, len(b.stages))] {
		if s.def.name != "" && strings.EqualFold(s.def.name, n) {
			return s
		}
	}
	return nil
}

// copyFrom resolves COPY --from=from in stage index: an earlier stage
// (by name or index), or else an image reference.
func (b *builder) copyFrom(from string, index int) (*stage, string, error) {
	return b.stageOrImage("COPY --from", from, index)
}

// stageOrImage resolves a reference to an earlier stage (by name or
// index) or else an image, written flag=from in stage index; messages
// start with flag=from.
func (b *builder) stageOrImage(flag, from string, index int) (*stage, string, error) {
	if res, _, err := b.shlex.ProcessWord(from, &kv{}); err != nil || res != from {
		return nil, "", errdefs.Invalid("%s=%s: variables are not expanded in --from or a mount's from=; define a stage with FROM ${ARG} AS name and use that name", flag, from)
	}
	if n, err := strconv.Atoi(from); err == nil {
		if n < 0 || n >= index {
			return nil, "", errdefs.Invalid("%s=%d: there is no stage %d before this one (stages count from 0)", flag, n, n)
		}
		return b.stages[n], "", nil
	}
	if s := b.stageByName(from, index); s != nil {
		return s, "", nil
	}
	for _, d := range b.df.stages[index:] {
		if d.name != "" && strings.EqualFold(d.name, from) {
			return nil, "", errdefs.Invalid("%s=%s: stage %q is defined after this one (line %d); move it above", flag, from, d.name, line(d.loc))
		}
	}
	if from == "scratch" {
		return nil, from, nil
	}
	if _, err := name.ParseReference(from); err != nil {
		return nil, "", errdefs.Invalid("%s=%s: no stage has that name and it is not a valid image reference: %w", flag, from, err)
	}
	return nil, from, nil
}

// targetStage returns the stage Options.Target names, or the last one.
func (b *builder) targetStage() (*stage, error) {
	if b.opts.Target == "" {
		return b.stages[len(b.stages)-1], nil
	}
	if s := b.stageByName(b.opts.Target, len(b.stages)); s != nil {
		return s, nil
	}
	var names []string
	for _, s := range b.stages {
		if s.def.name != "" {
			names = append(names, s.def.name)
		}
	}
	if len(names) == 0 {
		return nil, errdefs.NotFound("target stage %q not found: the Dockerfile has no named stages (use FROM ... AS name)", b.opts.Target)
	}
	return nil, errdefs.NotFound("target stage %q not found: the Dockerfile has stages %s", b.opts.Target, strings.Join(names, ", "))
}

// reach marks the stage index and every stage it needs.
func (b *builder) reach(index int, seen map[int]bool) {
	if seen[index] {
		return
	}
	seen[index] = true
	s := b.stages[index]
	if s.base != nil {
		b.reach(s.base.def.index, seen)
	}
	for _, d := range s.deps {
		b.reach(d, seen)
	}
}

// runStage runs a stage's instructions, from FROM on; the stages it
// needs are built.
func (b *builder) runStage(ctx context.Context, s *stage) error {
	if err := b.from(ctx, s); err != nil {
		return err
	}
	if triggers := s.cfg.Config.OnBuild; len(triggers) > 0 {
		s.cfg.Config.OnBuild = nil
		for _, t := range triggers {
			if err := b.trigger(ctx, s, t); err != nil {
				return err
			}
		}
	}
	total := len(s.def.commands) + 1
	for i, c := range s.def.commands {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.step(s, i+2, total, commandText(c))
		if err := b.dispatch(ctx, s, c); err != nil {
			return b.df.errAt(c.Location(), err)
		}
	}
	return nil
}

func commandText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(c.Name())
}

// from sets up a stage from its base: an earlier stage, scratch or an
// image from the local store.
func (b *builder) from(ctx context.Context, s *stage) error {
	switch {
	case s.base != nil:
		if err := b.build(ctx, s.base); err != nil {
			return err
		}
		s.cfg = s.base.cfg.DeepCopy()
		s.layers = slices.Clone(s.base.layers)
		b.mu.Lock()
		if s.base.tree != nil {
			s.tree = s.base.tree.clone()
		}
		b.mu.Unlock()
		s.created = s.base.created
		s.ownHist = s.base.ownHist
		if s.platform != s.base.platform {
			return b.df.errAt(s.def.loc, errdefs.Invalid("FROM %s: stage %s is built for %s, this stage for %s", s.def.baseName, s.base.def.label(), s.base.platform, s.platform))
		}
	case s.baseName == "scratch":
		s.cfg = &v1.ConfigFile{}
		s.tree = newTree()
		if b.epoch != nil {
			s.tree.root.mtime = *b.epoch
		}
	default:
		src, err := b.source(ctx, s.baseName)
		if err != nil {
			return b.df.errAt(s.def.loc, fmt.Errorf("FROM %s: %w", s.baseName, err))
		}
		if (src.cfg.OS != "" && src.cfg.OS != s.platform.OS) || (src.cfg.Architecture != "" && src.cfg.Architecture != s.platform.Arch) {
			return b.df.errAt(s.def.loc, errdefs.Invalid("FROM %s: the image is for %s/%s but the build is for %s: pull the image for %s or build with --platform %s/%s",
				s.baseName, src.cfg.OS, src.cfg.Architecture, s.platform, s.platform, src.cfg.OS, src.cfg.Architecture))
		}
		s.cfg = src.cfg.DeepCopy()
		s.layers = slices.Clone(src.layers)
		s.created = src.cfg.Created.Time
		s.ownHist = len(s.cfg.History)
	}
	s.cfg.OS, s.cfg.Architecture, s.cfg.Variant = s.platform.OS, s.platform.Arch, s.platform.Variant
	if _, ok := envLookup(s.cfg.Config.Env, "PATH"); !ok {
		s.cfg.Config.Env = append(s.cfg.Config.Env, "PATH="+defaultPath)
	}
	s.args = &kv{}
	return nil
}

// imageSource is an image from the local store used by FROM or COPY --from.
type imageSource struct {
	ref    string
	cfg    *v1.ConfigFile
	layers []v1.Layer
	tree   *fsTree
}

// source loads an image from the store, once per build.
func (b *builder) source(ctx context.Context, ref string) (*imageSource, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if src, ok := b.sources[ref]; ok {
		return src, nil
	}
	if b.images == nil {
		return nil, errdefs.NotFound("image %q is not available: this build has no image store; use FROM scratch", ref)
	}
	if b.opts.Pull {
		if err := b.pull(ctx, ref); err != nil {
			return nil, err
		}
	}
	img, err := b.images.Image(ctx, ref)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, errdefs.NotFound("image %q is not in the local store: run `skiff image pull %s` or build it with `skiff image build -t %s` first (builds never pull)", ref, ref, ref)
		}
		if errdefs.Category(err) == nil {
			err = errdefs.Unavailable("loading image %q: %w", ref, err)
		}
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, errdefs.Unavailable("reading the config of image %q: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, errdefs.Unavailable("reading the layers of image %q: %w", ref, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, errdefs.Invalid("image %q lists %d layers and %d diff IDs: the image is corrupt", ref, len(layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range layers {
		layers[i] = diffIDLayer{Layer: l, diffID: cfg.RootFS.DiffIDs[i]}
	}
	src := &imageSource{ref: ref, cfg: cfg, layers: layers}
	b.sources[ref] = src
	b.holdLayers(ctx, ref, layers)
	return src, nil
}

// pull fetches ref from its registry (--pull).
func (b *builder) pull(ctx context.Context, ref string) error {
	if b.opts.Puller == nil {
		return errdefs.Invalid("--pull needs a registry client, and this build has none: build through the skiff daemon")
	}
	b.printf("Pulling %s\n", ref)
	if err := b.opts.Puller.Pull(ctx, ref); err != nil {
		if errdefs.Category(err) == nil {
			err = errdefs.Unavailable("%w", err)
		}
		return fmt.Errorf("--pull: cannot pull image %q from its registry (build without --pull to use the local copy): %w", ref, err)
	}
	return nil
}

// diffIDLayer is a layer of a stored image with the diff ID its config
// lists: asking the store's layer would decompress it to compute one.
type diffIDLayer struct {
	v1.Layer
	diffID v1.Hash
}

// DiffID returns the diff ID from the image config.
func (l diffIDLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// layerHolder is what an image store that keeps layers unpacked offers a
// build: the directories of an image's layers (bottom first, with their
// diff IDs), kept until release is called.
type layerHolder interface {
	HoldLayers(ctx context.Context, ref string) (dirs []string, diffIDs []v1.Hash, release func(), err error)
}

// holdLayers asks the image store for the unpacked directories of the
// image ref, whose layers the build loaded, so RUN steps stack on them
// instead of unpacking the image again. Without them (another store, an
// error, an image retagged meanwhile) the build unpacks the layers itself.
func (b *builder) holdLayers(ctx context.Context, ref string, layers []v1.Layer) {
	h, ok := b.images.(layerHolder)
	if !ok {
		return
	}
	dirs, diffIDs, release, err := h.HoldLayers(ctx, ref)
	if err != nil {
		return
	}
	b.runMu.Lock() // the RUN directories' lock, which layerDirs takes
	defer b.runMu.Unlock()
	b.releases = append(b.releases, release)
	if len(diffIDs) != len(layers) || len(dirs) != len(layers) {
		return
	}
	chains := make([]string, len(layers))
	chain := ""
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil || d != diffIDs[i] {
			return
		}
		chain = chainID(chain, d)
		chains[i] = chain
	}
	for i, c := range chains {
		b.held[c] = dirs[i]
	}
}

// releaseHeld lets the store's layer directories go.
func (b *builder) releaseHeld() {
	for _, r := range b.releases {
		r()
	}
}

// layerSource reads a layer's tar stream.
type layerSource struct{ l v1.Layer }

func (s layerSource) openTar() (io.ReadCloser, error) { return s.l.Uncompressed() }

// treeFromLayers applies layers in order to an empty tree.
func treeFromLayers(ctx context.Context, layers []v1.Layer) (*fsTree, error) {
	t := newTree()
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := t.applyLayerOf(ctx, l, -(i + 1)); err != nil {
			return nil, errdefs.Unavailable("reading layer %d: %w", i+1, err)
		}
	}
	return t, nil
}

// imageTree returns the filesystem of an image, read once per build.
func (b *builder) imageTree(ctx context.Context, src *imageSource) (*fsTree, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.imageTreeLocked(ctx, src)
}

func (b *builder) imageTreeLocked(ctx context.Context, src *imageSource) (*fsTree, error) {
	if src.tree == nil {
		t, err := treeFromLayers(ctx, src.layers)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", src.ref, err)
		}
		src.tree = t
	}
	return src.tree, nil
}

// stageTree returns a stage's current filesystem, reading its base
// layers the first time.
func (b *builder) stageTree(ctx context.Context, s *stage) (*fsTree, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.tree != nil {
		return s.tree, nil
	}
	if s.base == nil {
		if src, ok := b.sources[s.baseName]; ok && len(src.layers) == len(s.layers) {
			t, err := b.imageTreeLocked(ctx, src)
			if err != nil {
				return nil, err
			}
			s.tree = t.clone()
			return s.tree, nil
		}
	}
	t, err := treeFromLayers(ctx, s.layers)
	if err != nil {
		return nil, err
	}
	s.tree = t
	return t, nil
}

// contextTree returns the build context's filesystem, read once.
func (b *builder) contextTree(ctx context.Context) (*fsTree, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctxTree == nil {
		t, err := b.cx.tree(ctx)
		if err != nil {
			return nil, err
		}
		b.ctxTree = t
	}
	return b.ctxTree, nil
}

// mtime clamps a file time to SOURCE_DATE_EPOCH, when set.
func (b *builder) mtime(t time.Time) time.Time {
	if b.epoch != nil && t.After(*b.epoch) {
		return *b.epoch
	}
	return t
}

// newTime is the mtime of directories the build creates: SOURCE_DATE_EPOCH
// or the Unix epoch, so that builds repeat.
func (b *builder) newTime() time.Time {
	if b.epoch != nil {
		return *b.epoch
	}
	return time.Unix(0, 0).UTC()
}

// history records an instruction in the stage's image history.
func (s *stage) history(createdBy string, layer bool) {
	s.cfg.History = append(s.cfg.History, v1.History{
		CreatedBy:  createdBy,
		Comment:    historyComment,
		EmptyLayer: !layer,
	})
}

// commit writes the nodes of generation gen as a new layer of the stage,
// and keeps it in the cache under key (unless key is "").
func (b *builder) commit(ctx context.Context, s *stage, gen int, createdBy, key string) error {
	dir, err := b.unpackDir()
	if err != nil {
		return err
	}
	l, newest, err := writeLayer(ctx, b.tmpDir, s.tree, gen, dir)
	if err != nil {
		if errdefs.Category(err) == nil && ctx.Err() == nil {
			err = errdefs.Unavailable("writing the layer: %w", err)
		}
		return err
	}
	if err := b.keepUnpacked(s, l); err != nil {
		return err
	}
	b.remember(ctx, key, l, newest)
	s.layers = append(s.layers, l)
	s.history(createdBy, true)
	if newest.After(s.created) {
		s.created = newest
	}
	return nil
}

// nextGen starts a new layer generation.
func (b *builder) nextGen() int { return int(b.gen.Add(1)) }

// image assembles the OCI image of a built stage.
func (b *builder) image(s *stage) (v1.Image, error) {
	cfg := s.cfg.DeepCopy()
	created := s.created
	if b.epoch != nil {
		created = *b.epoch
	}
	created = created.UTC()
	cfg.Created = v1.Time{Time: created}
	for i := s.ownHist; i < len(cfg.History); i++ {
		cfg.History[i].Created = v1.Time{Time: created}
	}
	cfg.RootFS = v1.RootFS{Type: "layers"}
	adds := make([]mutate.Addendum, 0, len(s.layers))
	for i, l := range s.layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, errdefs.Unavailable("layer %d: %w", i+1, err)
		}
		if _, ours := l.(*fileLayer); !ours {
			mt, err := ociLayerType(l)
			if err != nil {
				return nil, err
			}
			l = typedLayer{Layer: l, mt: mt}
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		adds = append(adds, mutate.Addendum{Layer: l})
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, errdefs.Unavailable("assembling the image: %w", err)
	}
	// The config is set last, complete with every diff ID and the
	// history in instruction order (Append would add one entry per layer).
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, errdefs.Unavailable("assembling the image: %w", err)
	}
	return img, nil
}

// typedLayer is a base image layer presented with its OCI media type.
type typedLayer struct {
	v1.Layer
	mt types.MediaType
}

// MediaType returns the OCI media type.
func (l typedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

// ociLayerType maps a base layer's media type to its OCI equivalent
// (docker's gzip layers are byte for byte OCI gzip layers).
func ociLayerType(l v1.Layer) (types.MediaType, error) {
	mt, err := l.MediaType()
	if err != nil {
		return "", errdefs.Unavailable("reading a layer's media type: %w", err)
	}
	switch mt {
	case types.DockerLayer, types.OCILayer:
		return types.OCILayer, nil
	case types.DockerUncompressedLayer, types.OCIUncompressedLayer:
		return types.OCIUncompressedLayer, nil
	case types.OCILayerZStd:
		return mt, nil
	default:
		return "", errdefs.Invalid("base image layer has media type %s, which an OCI image cannot carry", mt)
	}
}
