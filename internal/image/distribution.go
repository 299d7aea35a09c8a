package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
)

// This file is the store's side of the registry (internal/registry): the
// registry serves the same blobs and the same index.json entries as
// everything else, so there is one copy of each blob.
//
// A repository is a fully qualified name ("localhost/hello"). Its
// manifests are the index entries whose ref name is in it: a tag
// ("localhost/hello:1.0") or a digest ("localhost/hello@sha256:..."), the
// latter for a manifest pushed by digest (an index's platform images, a
// signature, an SBOM). Blobs are shared by all repositories.

// digestAlgorithms are the algorithms blobs may be addressed by, each a
// directory under images/blobs.
var digestAlgorithms = []string{"sha256", "sha512"}

// DefaultUploadMaxAge is how long an unfinished registry upload, or a
// blob uploaded that no manifest names yet, is kept (see WithUploadMaxAge).
const DefaultUploadMaxAge = 24 * time.Hour

// uploadsDirName is the directory under images/.tmp for registry uploads.
const uploadsDirName = "uploads"

// WithUploadMaxAge sets how long Prune keeps an unfinished registry upload
// after its last write, and how long a blob the registry received is kept
// for a manifest to name it (d <= 0 keeps DefaultUploadMaxAge).
func WithUploadMaxAge(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.uploadMaxAge = d
		}
	}
}

// validDigest reports whether h is a digest the store can address: sha256
// or sha512 with the right number of lowercase hex digits.
func validDigest(h v1.Hash) bool {
	switch h.Algorithm {
	case "sha256":
		return len(h.Hex) == 64 && hexRE.MatchString(h.Hex)
	case "sha512":
		return len(h.Hex) == 128 && hexRE.MatchString(h.Hex)
	}
	return false
}

// ValidDigest reports whether d ("sha256:<hex>") is a digest the store
// can address.
func ValidDigest(d string) (v1.Hash, bool) {
	h, err := v1.NewHash(d)
	if err != nil || !validDigest(h) {
		return v1.Hash{}, false
	}
	return h, true
}

// splitRef splits an index entry's ref name into its repository and its
// tag or digest.
func splitRef(r string) (repo, tag, digest string) {
	if i := strings.LastIndex(r, "@"); i >= 0 {
		return r[:i], "", r[i+1:]
	}
	if i := strings.LastIndex(r, ":"); i > strings.LastIndex(r, "/") {
		return r[:i], r[i+1:], ""
	}
	return r, "", ""
}

// OpenBlob opens blob h for reading. It is ErrNotFound when the store has
// no such blob. The file stays readable even if the blob is deleted
// meanwhile.
func (s *Store) OpenBlob(h v1.Hash) (*os.File, error) {
	if !validDigest(h) {
		return nil, errdefs.Invalid("unsupported digest %q: only sha256 and sha512 are supported", h)
	}
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("blob %s is not in the store", h)
	}
	if err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read blob %s: %w", h, err))
	}
	return f, nil
}

// BlobSize returns the size of blob h and whether the store has it.
func (s *Store) BlobSize(h v1.Hash) (int64, bool) {
	if !validDigest(h) {
		return 0, false
	}
	fi, err := os.Stat(s.blobPath(h))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// UploadDir returns the directory registry uploads are written in (under
// the store's temporary area, so a restart removes what was unfinished),
// creating it if needed.
func (s *Store) UploadDir() (string, error) {
	d := filepath.Join(s.tmpDir, uploadsDirName)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("create the upload directory: %w", err))
	}
	return d, nil
}

// CommitUpload moves the finished upload at path (in UploadDir) into place
// as blob h. The caller has computed h from the content while receiving
// it. The blob is leased for the upload max age so that Prune leaves it
// for the manifest that will name it. An identical blob already present
// is kept and path removed.
func (s *Store) CommitUpload(path string, h v1.Hash) error {
	if !validDigest(h) {
		return errdefs.Invalid("unsupported digest %q: only sha256 and sha512 are supported", h)
	}
	defer os.Remove(path)
	if err := os.MkdirAll(filepath.Dir(s.blobPath(h)), 0o700); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write blob %s: %w", h, err))
	}
	s.LeaseBlob(h)
	created, err := s.adoptBlob(path, h, true)
	if err != nil || !created {
		return err
	}
	if err := syncDir(filepath.Dir(s.blobPath(h))); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("sync blobs: %w", err))
	}
	return nil
}

// LeaseBlob keeps blob h from Prune for the upload max age, though no
// manifest names it yet: a blob pushed or mounted for a manifest to come.
func (s *Store) LeaseBlob(h v1.Hash) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if s.leases == nil {
		s.leases = map[v1.Hash]time.Time{}
	}
	s.leases[h] = time.Now().Add(s.uploadMaxAge)
}

// leasedLocked reports whether blob h is leased; the caller holds pinMu.
func (s *Store) leasedLocked(h v1.Hash) bool {
	until, ok := s.leases[h]
	if ok && time.Now().After(until) {
		delete(s.leases, h)
		return false
	}
	return ok
}

// DeleteBlob deletes blob h unless an image, a container's image, an
// operation in progress or another upload still needs it: then it is
// ErrConflict and the blob stays. It is ErrNotFound when absent.
func (s *Store) DeleteBlob(ctx context.Context, h v1.Hash) error {
	if _, ok := s.BlobSize(h); !ok {
		return errdefs.NotFound("blob %s is not in the store", h)
	}
	if err := s.lockIndex(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	reach, _, err := s.reachableLocked(s.index)
	if err != nil {
		return err
	}
	if reach[h] {
		return errdefs.Conflict("blob %s is used by an image in the store: delete the manifests that name it first", h)
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if s.pins[blobKey(h)] > 0 {
		return errdefs.Conflict("blob %s is in use by an operation in progress: try again later", h)
	}
	delete(s.leases, h)
	if err := os.Remove(s.blobPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("delete blob %s: %w", h, err))
	}
	return nil
}

// ReadManifest returns the bytes of manifest blob h as stored (at most the
// metadata size limit).
func (s *Store) ReadManifest(h v1.Hash) ([]byte, error) { return s.readBlob(h) }

// ResolveManifest returns the descriptor of the manifest reference (a tag
// or a digest) names in repository repo. It is ErrNotFound when the
// repository has no such tag or manifest.
func (s *Store) ResolveManifest(repo, reference string) (v1.Descriptor, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer unlock()
	h, isDigest := ValidDigest(reference)
	for _, e := range entries {
		r, tag, _ := splitRef(refOf(e))
		if r != repo {
			continue
		}
		if (isDigest && e.Digest == h) || (!isDigest && tag == reference) {
			if _, ok := s.BlobSize(e.Digest); ok {
				return v1.Descriptor{MediaType: e.MediaType, Size: e.Size, Digest: e.Digest}, nil
			}
		}
	}
	return v1.Descriptor{}, errdefs.NotFound("manifest %s is not in repository %s", reference, repo)
}

// PutManifest stores raw (whose descriptor desc the caller has computed)
// in repository repo, under tag when tag is not empty, else by digest. A
// tag that named another manifest moves, and that manifest is kept
// untagged (dangling) when nothing else names it, for Prune to collect.
// needs are the blobs raw names that must be present: they are checked
// under the index lock, so no prune or blob delete can take one before
// the index names it (ErrNotFound names a missing one).
func (s *Store) PutManifest(ctx context.Context, repo, tag string, desc v1.Descriptor, raw []byte, needs []v1.Hash) error {
	pins := s.pin(blobKey(desc.Digest))
	defer pins.release()
	if err := s.putRaw(desc.Digest, raw); err != nil {
		return err
	}
	if err := s.lockIndex(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, h := range needs {
		if _, ok := s.BlobSize(h); !ok {
			return errdefs.NotFound("blob %s is not in the store", h)
		}
	}
	if tag != "" {
		return s.writeIndex(withAdditions(s.index, []addition{{desc: desc, refs: []string{repo + ":" + tag}}}))
	}
	if slices.ContainsFunc(s.index, func(e v1.Descriptor) bool { return inRepo(e, repo) && e.Digest == desc.Digest }) {
		return nil
	}
	return s.writeIndex(append(slices.Clone(s.index), tagged(desc, repo+"@"+desc.Digest.String())))
}

func inRepo(e v1.Descriptor, repo string) bool {
	r, _, _ := splitRef(refOf(e))
	return r == repo
}

// putRaw writes b as blob h (any supported algorithm), synced, unless it
// is present.
func (s *Store) putRaw(h v1.Hash, b []byte) error {
	if _, ok := s.BlobSize(h); ok {
		return nil
	}
	dir, err := s.UploadDir()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "manifest-")
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write manifest %s: %w", h, err))
	}
	_, err = f.Write(b)
	f.Close()
	if err != nil {
		os.Remove(f.Name())
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write manifest %s: %w", h, err))
	}
	return s.CommitUpload(f.Name(), h)
}

// DeleteManifest removes every tag and digest entry of manifest h from
// repository repo. An image a container uses (inUse, by image ID; may be
// nil) stays in the store untagged. The blobs stay until Prune. It is
// ErrNotFound when the repository does not hold h.
func (s *Store) DeleteManifest(ctx context.Context, repo string, h v1.Hash, inUse func(id string) bool) error {
	if err := s.lockIndex(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	var gone []v1.Descriptor
	entries := slices.DeleteFunc(slices.Clone(s.index), func(e v1.Descriptor) bool {
		if inRepo(e, repo) && e.Digest == h {
			gone = append(gone, e)
			return true
		}
		return false
	})
	if len(gone) == 0 {
		return errdefs.NotFound("manifest %s is not in repository %s", h, repo)
	}
	if inUse != nil && !slices.ContainsFunc(entries, func(e v1.Descriptor) bool { return e.Digest == h }) {
		if m, err := s.meta(gone[0]); err == nil && inUse(m.id.String()) {
			entries = append(entries, tagged(gone[0], ""))
		}
	}
	return s.writeIndex(normalize(entries))
}

// DeleteTag removes tag from repository repo. The manifest stays in the
// repository by digest. It is ErrNotFound when there is no such tag.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := s.lockIndex(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ref := repo + ":" + tag
	i := slices.IndexFunc(s.index, func(e v1.Descriptor) bool { return refOf(e) == ref })
	if i < 0 {
		return errdefs.NotFound("tag %s is not in repository %s", tag, repo)
	}
	e := s.index[i]
	entries := slices.Delete(slices.Clone(s.index), i, i+1)
	if !slices.ContainsFunc(entries, func(o v1.Descriptor) bool { return inRepo(o, repo) && o.Digest == e.Digest }) {
		entries = append(entries, tagged(e, repo+"@"+e.Digest.String()))
	}
	return s.writeIndex(entries)
}

// RepoTags returns the tags of repository repo, sorted, and whether the
// repository holds any manifest.
func (s *Store) RepoTags(repo string) ([]string, bool, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	var tags []string
	found := false
	for _, e := range entries {
		r, tag, _ := splitRef(refOf(e))
		if r != repo {
			continue
		}
		found = true
		if tag != "" {
			tags = append(tags, tag)
		}
	}
	slices.Sort(tags)
	return slices.Compact(tags), found, nil
}

// RepoManifests returns the descriptors of the manifests repository repo
// holds, one per digest.
func (s *Store) RepoManifests(repo string) ([]v1.Descriptor, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, e := range entries {
		if !inRepo(e, repo) || seen[e.Digest] {
			continue
		}
		seen[e.Digest] = true
		out = append(out, v1.Descriptor{MediaType: e.MediaType, Size: e.Size, Digest: e.Digest})
	}
	return out, nil
}

// Repositories returns the names of the repositories that hold at least
// one manifest, sorted.
func (s *Store) Repositories() ([]string, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []string
	for _, e := range entries {
		if r := refOf(e); r != "" {
			repo, _, _ := splitRef(r)
			out = append(out, repo)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// pruneUploads removes registry uploads not written to for the upload max
// age.
func (s *Store) pruneUploads() {
	dir := filepath.Join(s.tmpDir, uploadsDirName)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-s.uploadMaxAge)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
