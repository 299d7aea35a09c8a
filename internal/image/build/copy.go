package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/inroot"
)

// copyOp is a COPY or ADD after variable expansion.
type copyOp struct {
	name     string // "COPY" or "ADD"
	add      bool
	srcs     []string
	contents []instructions.SourceContent // heredocs
	dest     string
	from     string
	chown    string
	chmod    string
	excludes []string
	parents  bool
	unpack   bool // ADD: extract local tar archives
	checksum string
}

// copyItem is one resolved source of a COPY or ADD.
type copyItem struct {
	src  string // as written, for messages
	name string // name under a directory destination
	n    *node  // the source, its symlink followed
}

// copier writes the entries of one COPY or ADD into the stage tree.
type copier struct {
	ctx       context.Context
	b         *builder
	op        copyOp
	t         *fsTree
	gen       int
	keepOwner bool // sources from images and stages keep their owners, as with BuildKit
	chown     bool
	uid, gid  int
	chmod     bool
	mode      int64
	exclude   *patternmatcher.PatternMatcher
	placed    []*node
	copies    map[*node]*node // source file → its copy, to keep hard links
}

// isRemote reports whether a source is a URL or git remote.
func isRemote(src string) bool {
	for _, p := range []string{"http://", "https://", "git://", "ssh://", "git@"} {
		if strings.HasPrefix(src, p) {
			return true
		}
	}
	return false
}

// copy runs a COPY or ADD: it resolves the sources, writes them into the
// stage's tree as a new generation and commits that as one layer.
func (b *builder) copy(ctx context.Context, s *stage, op copyOp) error {
	c := &copier{ctx: ctx, b: b, op: op}
	if err := c.options(); err != nil {
		return err
	}
	key, items, resolved, err := c.cacheKey(ctx, s)
	if err != nil {
		return err
	}
	if hit, err := b.cached(ctx, s, key, c.createdBy()); hit || err != nil {
		return err
	}
	if err := c.owner(ctx, s); err != nil {
		return err
	}
	if !resolved {
		src, where, err := c.source(ctx, s)
		if err != nil {
			return err
		}
		if items, err = c.resolve(src, where); err != nil {
			return err
		}
	}
	if c.t, err = b.stageTree(ctx, s); err != nil {
		return err
	}

	raw := op.dest
	if strings.IndexByte(raw, 0) >= 0 {
		return errdefs.Invalid("%s: the destination %q holds a NUL byte", op.name, raw)
	}
	destIsDir := raw == "" || raw == "." || raw == ".." || strings.HasSuffix(raw, "/") ||
		strings.HasSuffix(raw, "/.") || strings.HasSuffix(raw, "/..")
	dest := raw
	if !path.IsAbs(dest) {
		wd := s.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	dest = path.Clean(dest)
	if n, _, err := c.t.lookup(dest, true); err == nil && n.isDir() {
		destIsDir = true
	}
	if len(items) > 1 && !destIsDir {
		return errdefs.Invalid("%s: with more than one source file the destination must be a directory ending in / (write %s/)", op.name, raw)
	}

	c.gen = b.nextGen()
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case it.n.isDir():
			if n, _, err := c.t.lookup(dest, true); err != nil || !n.isDir() {
				if _, err := c.place(dest, it.n); err != nil {
					return err
				}
			}
			if err := c.copyDir(it.n, dest, ""); err != nil {
				return err
			}
		case op.add && op.unpack && it.n.typ == tar.TypeReg && isArchive(it.n):
			if err := c.extract(it, dest); err != nil {
				return err
			}
		default:
			target := dest
			if destIsDir {
				target = path.Join(dest, it.name)
			}
			if _, err := c.place(target, it.n); err != nil {
				return err
			}
		}
	}
	if err := b.spool.fetch(c.placed); err != nil {
		return errdefs.Unavailable("%s: reading the sources: %w", op.name, err)
	}
	return b.commit(ctx, s, c.gen, c.createdBy(), key)
}

// cacheKey returns the step's cache key ("" without a cache). For
// context sources it resolves them (resolved is then true) to hash what
// they hold; --from sources count by the chain ID of the stage or image,
// so their filesystem is not read when the cache hits.
func (c *copier) cacheKey(ctx context.Context, s *stage) (key string, items []copyItem, resolved bool, err error) {
	b := c.b
	if b.opts.Cache == nil {
		return "", nil, false, nil
	}
	k := stepKey{Op: c.createdBy(), Workdir: s.cfg.Config.WorkingDir}
	if c.op.add {
		k.Op += fmt.Sprintf(" (unpack=%t)", c.op.unpack)
	}
	if c.op.from == "" {
		t, err := b.contextTree(ctx)
		if err != nil {
			return "", nil, false, err
		}
		if items, err = c.resolve(t, "the build context"); err != nil {
			return "", nil, false, err
		}
		if k.Sources, err = c.sourcesDigest(items); err != nil {
			return "", nil, false, err
		}
		resolved = true
	} else {
		dep, ref, err := b.copyFrom(c.op.from, s.def.index)
		if err != nil {
			return "", nil, false, err
		}
		var layers []v1.Layer
		switch {
		case dep != nil:
			if err := b.build(ctx, dep); err != nil {
				return "", nil, false, err
			}
			layers, k.Sources = dep.layers, "stage:"
		case ref == "scratch":
			k.Sources = "scratch:"
		default:
			src, err := c.image(ctx, ref)
			if err != nil {
				return "", nil, false, err
			}
			layers, k.Sources = src.layers, "image:"
		}
		chain, err := chainOfLayers(layers)
		if err != nil {
			return "", nil, false, err
		}
		k.Sources += chain
	}
	key, err = b.cacheKey(s, k)
	return key, items, resolved, err
}

// owner resolves --chown against the stage's /etc/passwd and /etc/group.
func (c *copier) owner(ctx context.Context, s *stage) error {
	op := c.op
	if op.chown == "" {
		return nil
	}
	uid, gid, err := c.b.owner(ctx, s, op.chown, true)
	if err != nil {
		return errdefs.Invalid("%s --chown=%s: %w", op.name, op.chown, err)
	}
	c.chown, c.uid, c.gid = true, uid, gid
	return nil
}

// options checks the flags and parses --chmod and --exclude.
func (c *copier) options() error {
	op := c.op
	if op.parents {
		return errdefs.Invalid("%s --parents is not supported yet: copy each directory with its own %s", op.name, op.name)
	}
	if op.checksum != "" {
		return errdefs.Invalid("ADD --checksum only applies to remote sources, and skiff does not fetch remote sources")
	}
	for _, src := range op.srcs {
		if !isRemote(src) {
			continue
		}
		if !op.add {
			return errdefs.Invalid("COPY %s: COPY cannot fetch URLs; sources are paths in the build context", src)
		}
		return errdefs.Invalid("ADD %s: remote sources are not supported: skiff builds offline; download the file into the build context and COPY it", src)
	}
	if op.chmod != "" {
		m, err := strconv.ParseUint(op.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return errdefs.Invalid("%s --chmod=%s: the mode must be octal, from 0 to 7777, for example --chmod=0755", op.name, op.chmod)
		}
		c.chmod, c.mode = true, int64(m)
	}
	if len(op.excludes) > 0 {
		pm, err := patternmatcher.New(op.excludes)
		if err != nil {
			return errdefs.Invalid("%s --exclude: %w", op.name, err)
		}
		c.exclude = pm
	}
	return nil
}

// source returns the tree the sources are read from and how to name it.
func (c *copier) source(ctx context.Context, s *stage) (*fsTree, string, error) {
	b := c.b
	if c.op.from == "" {
		t, err := b.contextTree(ctx)
		return t, "the build context", err
	}
	c.keepOwner = true
	dep, ref, err := b.copyFrom(c.op.from, s.def.index)
	if err != nil {
		return nil, "", err
	}
	if dep != nil {
		if err := b.need(ctx, dep); err != nil {
			return nil, "", err
		}
		t, err := b.stageTree(ctx, dep)
		return t, "stage " + dep.def.label(), err
	}
	if ref == "scratch" {
		return newTree(), "scratch", nil
	}
	src, err := c.image(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	t, err := b.imageTree(ctx, src)
	return t, fmt.Sprintf("image %q", ref), err
}

// image loads the image COPY --from names.
func (c *copier) image(ctx context.Context, ref string) (*imageSource, error) {
	src, err := c.b.source(ctx, ref)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, errdefs.NotFound("COPY --from=%s: no stage has that name, and %w", c.op.from, err)
		}
		return nil, fmt.Errorf("COPY --from=%s: %w", c.op.from, err)
	}
	return src, nil
}

// resolve expands wildcards and finds every source.
func (c *copier) resolve(src *fsTree, where string) ([]copyItem, error) {
	op := c.op
	var items []copyItem
	for _, raw := range op.srcs {
		if strings.IndexByte(raw, 0) >= 0 {
			return nil, errdefs.Invalid("%s: the source %q holds a NUL byte", op.name, raw)
		}
		p := path.Clean("/" + raw)
		if op.from == "" {
			rel := path.Clean(strings.TrimLeft(raw, "/"))
			if rel == ".." || strings.HasPrefix(rel, "../") {
				return nil, errdefs.Invalid("%s %s: the source is outside the build context; sources are paths inside the context directory (move the file in, or build from a wider context)", op.name, raw)
			}
			p = "/" + rel
		}
		if hasWildcard(p) {
			matches, err := src.glob(p)
			if err != nil {
				return nil, errdefs.Invalid("%s %s: bad pattern: %w", op.name, raw, err)
			}
			for _, m := range matches {
				if c.excluded(m) {
					continue
				}
				n, err := c.lookup(src, "/"+m, raw, where)
				if err != nil {
					return nil, err
				}
				items = append(items, copyItem{src: raw, name: path.Base(m), n: n})
			}
			continue
		}
		// Without wildcards, escaped characters (br\[1\].txt) stand for themselves.
		p = unescapeGlob(p)
		n, err := c.lookup(src, p, raw, where)
		if err != nil {
			return nil, err
		}
		items = append(items, copyItem{src: raw, name: path.Base(p), n: n})
	}
	for _, hd := range op.contents {
		if strings.IndexByte(hd.Path, 0) >= 0 {
			return nil, errdefs.Invalid("%s: the heredoc name %q holds a NUL byte", op.name, hd.Path)
		}
		data := []byte(hd.Data)
		items = append(items, copyItem{src: "<<" + hd.Path, name: path.Base(hd.Path), n: &node{
			typ: tar.TypeReg, mode: 0o644, size: int64(len(data)), data: memContent(data), mtime: c.b.newTime(),
		}})
	}
	return items, nil
}

// lookup finds a source, following symlinks, with an error that says
// where it was looked for.
func (c *copier) lookup(src *fsTree, p, raw, where string) (*node, error) {
	n, _, err := src.lookup(p, true)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, errLoop):
		return nil, errdefs.Invalid("%s %s: %v", c.op.name, raw, err)
	}
	if l, _, lerr := src.lookup(p, false); lerr == nil && l.typ == tar.TypeSymlink {
		return nil, errdefs.NotFound("%s %s: %q is a symlink to %q, which is not in %s (symlinks resolve inside it)", c.op.name, raw, strings.TrimPrefix(p, "/"), l.link, where)
	}
	hint := ""
	if c.op.from == "" {
		rel := strings.TrimPrefix(p, "/")
		if c.b.cx.Ignored(rel) && inroot.Exists(c.b.cx.Dir, rel) {
			hint = fmt.Sprintf(": it is excluded by %s", c.b.cx.IgnoreFile)
		}
	}
	return nil, errdefs.NotFound("%s %s: %q was not found in %s%s", c.op.name, raw, strings.TrimPrefix(p, "/"), where, hint)
}

// excluded reports whether --exclude drops the source at rel.
func (c *copier) excluded(rel string) bool {
	if c.exclude == nil {
		return false
	}
	ok, err := c.exclude.MatchesOrParentMatches(strings.TrimPrefix(rel, "/"))
	return err == nil && ok
}

// copyDir copies the contents of dir below dest.
func (c *copier) copyDir(dir *node, dest, rel string) error {
	for _, name := range sortedNames(dir) {
		ch := dir.children[name]
		r := path.Join(rel, name)
		if c.excluded(r) {
			continue
		}
		p := path.Join(dest, name)
		if _, err := c.place(p, ch); err != nil {
			return err
		}
		if ch.isDir() {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			if err := c.copyDir(ch, p, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkParent makes a directory the copy needs and the image lacks.
func (c *copier) mkParent() *node {
	n := &node{typ: tar.TypeDir, mode: 0o755, mtime: c.b.newTime(), children: map[string]*node{}, gen: c.gen}
	if c.chown {
		n.uid, n.gid = c.uid, c.gid
	}
	return n
}

// mkdir resolves directory p in the stage tree, creating what is missing.
func (c *copier) mkdir(p string) (*node, error) {
	dir, _, err := c.t.mkdirAll(p, c.mkParent)
	if err != nil {
		return nil, errdefs.Invalid("%s: cannot create directory %s: %v", c.op.name, p, err)
	}
	return dir, nil
}

// place writes a copy of src at p in the stage tree, following symlinks
// in p's parents (inside the tree) and creating missing ones. A directory
// placed over a directory updates its metadata and keeps its entries.
func (c *copier) place(p string, src *node) (*node, error) {
	if p == "/" {
		return c.t.root, nil
	}
	if prev := c.copies[src]; prev != nil {
		// The source is a hard link to a file already copied.
		return prev, c.link(p, prev)
	}
	dir, err := c.mkdir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	n := &node{
		typ: src.typ, mode: src.mode, uid: src.uid, gid: src.gid, mtime: c.b.mtime(src.mtime),
		size: src.size, link: src.link, devMajor: src.devMajor, devMinor: src.devMinor,
		pax: maps.Clone(src.pax), data: src.data, gen: c.gen,
	}
	if !c.keepOwner {
		n.uid, n.gid = 0, 0
	}
	if c.chown {
		n.uid, n.gid = c.uid, c.gid
	}
	if c.chmod && n.typ != tar.TypeSymlink {
		n.mode = c.mode
	}
	name := path.Base(p)
	if old := dir.children[name]; old != nil && old.isDir() && n.isDir() {
		old.mode, old.uid, old.gid, old.mtime, old.pax, old.gen = n.mode, n.uid, n.gid, n.mtime, n.pax, n.gen
		return old, nil
	}
	if n.isDir() {
		n.children = map[string]*node{}
	}
	dir.children[name] = n
	if n.typ == tar.TypeReg {
		c.placed = append(c.placed, n)
		if c.copies == nil {
			c.copies = map[*node]*node{}
		}
		c.copies[src] = n
	}
	return n, nil
}

// link makes p a hard link to the regular file n this instruction placed
// earlier: the tree holds the same node at both paths, and writeLayer
// writes the later path as a hard link to the first.
func (c *copier) link(p string, n *node) error {
	dir, err := c.mkdir(path.Dir(p))
	if err != nil {
		return err
	}
	dir.children[path.Base(p)] = n
	return nil
}

// createdBy is the history text of the instruction, as BuildKit writes it.
func (c *copier) createdBy() string {
	op := c.op
	parts := []string{op.name}
	if op.from != "" {
		parts = append(parts, "--from="+op.from)
	}
	if op.chown != "" {
		parts = append(parts, "--chown="+op.chown)
	}
	if op.chmod != "" {
		parts = append(parts, "--chmod="+op.chmod)
	}
	for _, e := range op.excludes {
		parts = append(parts, "--exclude="+e)
	}
	parts = append(parts, op.srcs...)
	for _, hd := range op.contents {
		parts = append(parts, "<<"+hd.Path)
	}
	parts = append(parts, op.dest)
	return strings.Join(parts, " ")
}

// maxEtcFile bounds the /etc/passwd and /etc/group read to resolve names.
const maxEtcFile = 4 << 20

// owner resolves "user[:group]" against the stage's /etc/passwd and
// /etc/group. A bare user takes its primary group (a bare uid, the same
// gid). Unknown names are an error when strict, else root, as docker
// treats WORKDIR under USER.
func (b *builder) owner(ctx context.Context, s *stage, spec string, strict bool) (int, int, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" || (hasGroup && groupPart == "") {
		return 0, 0, errdefs.Invalid("the owner %q is not user[:group]", spec)
	}
	var uid, gid int
	if n, err := strconv.Atoi(userPart); err == nil {
		if n < 0 {
			return 0, 0, errdefs.Invalid("uid %d is negative", n)
		}
		uid, gid = n, n
	} else {
		e, err := b.etcLookup(ctx, s, "/etc/passwd", userPart)
		if err != nil {
			if strict {
				return 0, 0, err
			}
			return 0, 0, nil
		}
		uid = e.id
		if e.hasGroup {
			gid = e.gid
		}
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if n, err := strconv.Atoi(groupPart); err == nil {
		if n < 0 {
			return 0, 0, errdefs.Invalid("gid %d is negative", n)
		}
		return uid, n, nil
	}
	e, err := b.etcLookup(ctx, s, "/etc/group", groupPart)
	if err != nil {
		if strict {
			return 0, 0, err
		}
		return uid, gid, nil
	}
	return uid, e.id, nil
}

// etcLookup finds a name in the stage's /etc/passwd or /etc/group.
func (b *builder) etcLookup(ctx context.Context, s *stage, file, name string) (passwdEntry, error) {
	kind := "user"
	if file == "/etc/group" {
		kind = "group"
	}
	notFound := errdefs.Invalid("%s %q is not in the image's %s: use a numeric id (--chown=1000:1000) or add it to %s first", kind, name, file, file)
	t, err := b.stageTree(ctx, s)
	if err != nil {
		return passwdEntry{}, err
	}
	n, _, err := t.lookup(file, true)
	if err != nil || n.typ != tar.TypeReg {
		return passwdEntry{}, notFound
	}
	rc, err := n.data.open()
	if err != nil {
		return passwdEntry{}, errdefs.Unavailable("reading %s: %w", file, err)
	}
	defer rc.Close()
	for _, e := range parsePasswd(io.LimitReader(rc, maxEtcFile)) {
		if e.name == name {
			return e, nil
		}
	}
	return passwdEntry{}, notFound
}
