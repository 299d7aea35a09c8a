package image

import (
	"errors"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
)

// match is the result of looking a user's reference up in the index.
type match struct {
	// ref is the fully qualified reference that matched; "" when the
	// image was named by ID.
	ref string
	// entry is the index entry the image is read from.
	entry v1.Descriptor
	meta  *imageMeta
	// refs are the index references the user's reference covers: the
	// matched tag, every tag of the repository with the digest for a
	// digest reference, every tag of the image for an ID.
	refs []string
}

func notFound(ref string) error {
	return errdefs.NotFound("image %q not found: build it with \"skiff image build -t %s DIR\", import it with \"skiff image import FILE\", or pull it with \"skiff image pull %s\"", ref, ref, ref)
}

// lookup finds the image a user's reference names in entries. The order:
// a full ID ("sha256:<64 hex>" or 64 hex digits), then the reference's
// candidates (see Reference.Candidates), then a unique ID prefix.
func (s *Store) lookup(entries []v1.Descriptor, ref string) (match, error) {
	idHex, exact, isID := parseID(ref)
	if isID && exact {
		return s.lookupID(entries, ref, idHex)
	}
	parsed, perr := ParseReference(ref)
	if perr == nil {
		for _, c := range parsed.Candidates() {
			m, ok, err := s.lookupRef(entries, c)
			if err != nil || ok {
				return m, err
			}
		}
	}
	if isID {
		return s.lookupID(entries, ref, idHex)
	}
	if perr != nil {
		return match{}, perr
	}
	return match{}, notFound(ref)
}

// lookupRef finds a fully qualified reference. A digest reference matches
// an entry of the same repository whose manifest has that digest.
func (s *Store) lookupRef(entries []v1.Descriptor, c Reference) (match, bool, error) {
	want := c.String()
	if c.Digest == "" {
		for _, e := range entries {
			if refOf(e) == want {
				m, err := s.meta(e)
				return match{ref: want, entry: e, meta: m, refs: []string{want}}, true, err
			}
		}
		return match{}, false, nil
	}
	var found match
	ok := false
	for _, e := range entries {
		r := refOf(e)
		if r == "" || e.Digest.String() != c.Digest {
			continue
		}
		er, err := ParseReference(r)
		if err != nil || er.Name() != c.Name() {
			continue
		}
		if !ok {
			m, err := s.meta(e)
			if err != nil {
				return match{}, true, err
			}
			found = match{ref: want, entry: e, meta: m}
			ok = true
		}
		found.refs = append(found.refs, r)
	}
	return found, ok, nil
}

// lookupID finds an image by its config digest or a unique prefix of it.
func (s *Store) lookupID(entries []v1.Descriptor, ref, idHex string) (match, error) {
	var found match
	var ids []string
	for _, e := range entries {
		m, err := s.meta(e)
		if errors.Is(err, errNotImage) {
			continue
		}
		if err != nil {
			return match{}, err
		}
		if !strings.HasPrefix(m.id.Hex, idHex) {
			continue
		}
		if !slices.Contains(ids, m.id.String()) {
			ids = append(ids, m.id.String())
		}
		if found.meta == nil || (refOf(found.entry) == "" && refOf(e) != "") {
			found.entry, found.meta = e, m
		}
		if r := refOf(e); r != "" && !slices.Contains(found.refs, r) {
			found.refs = append(found.refs, r)
		}
	}
	switch len(ids) {
	case 0:
		return match{}, notFound(ref)
	case 1:
		slices.Sort(found.refs)
		return found, nil
	default:
		slices.Sort(ids)
		return match{}, errdefs.Invalid("image ID prefix %q is ambiguous: it matches %s; give more digits", ref, strings.Join(ids, ", "))
	}
}
