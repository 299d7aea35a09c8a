package image

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// group is one image (config digest) with every index entry that holds it.
type group struct {
	id      v1.Hash
	meta    *imageMeta // of the first tagged entry, else the first entry
	entries []v1.Descriptor
	tags    []string
}

// groups gathers index entries by image ID, in index order.
func (s *Store) groups(entries []v1.Descriptor) ([]*group, error) {
	var out []*group
	byID := map[v1.Hash]*group{}
	for _, e := range entries {
		m, err := s.meta(e)
		if errors.Is(err, errNotImage) {
			continue // an artifact the registry serves
		}
		if err != nil {
			return nil, fmt.Errorf("read image %s: %w", e.Digest, err)
		}
		g := byID[m.id]
		if g == nil {
			g = &group{id: m.id, meta: m}
			byID[m.id] = g
			out = append(out, g)
		}
		g.entries = append(g.entries, e)
		if r := refOf(e); r != "" {
			if len(g.tags) == 0 {
				g.meta = m
			}
			if !slices.Contains(g.tags, r) {
				g.tags = append(g.tags, r)
			}
		}
	}
	for _, g := range out {
		slices.Sort(g.tags)
	}
	return out, nil
}

// tagsOf returns every reference that points at image id.
func (s *Store) tagsOf(entries []v1.Descriptor, id v1.Hash) ([]string, error) {
	gs, err := s.groups(entries)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if g.id == id {
			return g.tags, nil
		}
	}
	return nil, nil
}

// List returns one entry per image (config digest) with all its tags,
// newest first.
func (s *Store) List(ctx context.Context) ([]api.Image, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	gs, err := s.groups(entries)
	unlock()
	if err != nil {
		return nil, err
	}
	out := make([]api.Image, 0, len(gs))
	for _, g := range gs {
		out = append(out, toAPI(g.meta, g.tags))
	}
	slices.SortStableFunc(out, func(a, b api.Image) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Count returns the number of images (distinct config digests).
func (s *Store) Count(ctx context.Context) (int, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return 0, err
	}
	defer unlock()
	gs, err := s.groups(entries)
	if err != nil {
		return 0, err
	}
	return len(gs), nil
}

// Inspect returns the image ref names (see the package documentation for
// how references are looked up).
func (s *Store) Inspect(ctx context.Context, ref string) (api.Image, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return api.Image{}, err
	}
	defer unlock()
	m, err := s.lookup(entries, ref)
	if err != nil {
		return api.Image{}, err
	}
	tags, err := s.tagsOf(entries, m.meta.id)
	if err != nil {
		return api.Image{}, err
	}
	return toAPI(m.meta, tags), nil
}

// Image returns the image ref names as a go-containerregistry image read
// from the store, e.g. as a build's base image. The image reads its blobs
// when asked for them: removing the image meanwhile makes those reads fail.
func (s *Store) Image(ctx context.Context, ref string) (v1.Image, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := s.lookup(entries, ref)
	if err != nil {
		return nil, err
	}
	return s.imageOf(m)
}

// imageOf returns the image m names as read from the layout. The caller
// holds the index lock, so index.json on disk names m's entry.
func (s *Store) imageOf(m match) (v1.Image, error) {
	ii, err := s.lp.ImageIndex()
	if err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read image index: %w", err))
	}
	if m.entry.MediaType.IsIndex() {
		ii, err = ii.ImageIndex(m.entry.Digest)
		if err != nil {
			return nil, fmt.Errorf("read image index %s: %w", m.entry.Digest, err)
		}
	}
	img, err := ii.Image(m.meta.desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", m.meta.desc.Digest, err)
	}
	return img, nil
}

// Tag makes dst (a reference; short names go under "localhost/") point at
// the image src names. A tag that pointed elsewhere moves; the image it
// left keeps its other tags or stays as an untagged (dangling) image.
func (s *Store) Tag(ctx context.Context, src, dst string) error {
	q, err := newTag(dst)
	if err != nil {
		return err
	}
	if err := s.lockIndex(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	m, err := s.lookup(s.index, src)
	if err != nil {
		return err
	}
	return s.writeIndex(withAdditions(s.index, []addition{{desc: m.entry, refs: []string{q}}}))
}

// newTag parses a reference a new tag is made from and returns its fully
// qualified form.
func newTag(ref string) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	if r.Digest != "" {
		return "", errdefs.Invalid("cannot tag %q: a tag cannot hold a digest; use NAME[:TAG]", ref)
	}
	return r.Local().String(), nil
}

// addition is one image to put in the index with the references that
// should point at it; no references adds it untagged.
type addition struct {
	desc v1.Descriptor
	refs []string
	// prepared are directories holding layers unpacked already, bottom
	// first (see PreparedLayer); "" or missing for none.
	prepared []string
}

// withAdditions returns a new entry list: each added reference moves to
// its image; an image that loses its last reference is kept as an
// untagged entry (dangling, for Prune to collect).
func withAdditions(entries []v1.Descriptor, adds []addition) []v1.Descriptor {
	out := slices.Clone(entries)
	var left []v1.Descriptor
	for _, a := range adds {
		if len(a.refs) == 0 {
			out = append(out, tagged(a.desc, ""))
			continue
		}
		for _, r := range a.refs {
			out = slices.DeleteFunc(out, func(e v1.Descriptor) bool {
				if refOf(e) == r {
					left = append(left, e)
					return true
				}
				return false
			})
			out = append(out, tagged(a.desc, r))
		}
	}
	for _, e := range left {
		if !slices.ContainsFunc(out, func(o v1.Descriptor) bool { return o.Digest == e.Digest }) {
			out = append(out, tagged(e, ""))
		}
	}
	return normalize(out)
}

// normalize drops untagged entries of manifests that also have a tagged
// entry, and duplicates.
func normalize(entries []v1.Descriptor) []v1.Descriptor {
	hasTag := map[v1.Hash]bool{}
	for _, e := range entries {
		if refOf(e) != "" {
			hasTag[e.Digest] = true
		}
	}
	seen := map[string]bool{}
	out := make([]v1.Descriptor, 0, len(entries))
	for _, e := range entries {
		r := refOf(e)
		if r == "" && hasTag[e.Digest] {
			continue
		}
		key := r + "\x00" + e.Digest.String()
		if r != "" {
			key = r
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	return out
}
