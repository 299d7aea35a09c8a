package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Remove untags ref. When the image has no tag left it is deleted with
// every blob and unpacked layer no other image needs, unless inUse(id)
// reports that a container uses it: then Remove fails with ErrConflict,
// or, when force is set, only untags it and keeps it as a dangling image
// for the containers. An image named by ID loses all its tags; if it has
// several, that needs force. inUse may be nil (nothing is in use).
func (s *Store) Remove(ctx context.Context, ref string, force bool, inUse func(id string) bool) (api.ImageRemoveResponse, error) {
	if inUse == nil {
		inUse = func(string) bool { return false }
	}
	if err := s.lockIndex(); err != nil {
		return api.ImageRemoveResponse{}, err
	}
	resp, deleted, err := s.removeLocked(ref, force, inUse)
	if err != nil || !deleted {
		s.mu.Unlock()
		return resp, err
	}
	_, trash, err := s.sweepLocked()
	s.mu.Unlock()
	if err == nil {
		_, err = emptyTrash(trash)
	}
	if err != nil {
		return resp, fmt.Errorf("image %s was removed but freeing its files failed (run prune to retry): %w", resp.Deleted[0], err)
	}
	return resp, nil
}

func (s *Store) removeLocked(ref string, force bool, inUse func(string) bool) (api.ImageRemoveResponse, bool, error) {
	var resp api.ImageRemoveResponse
	m, err := s.lookup(s.index, ref)
	if err != nil {
		return resp, false, err
	}
	id := m.meta.id
	byID := m.ref == ""
	tags, err := s.tagsOf(s.index, id)
	if err != nil {
		return resp, false, err
	}
	if byID && len(tags) > 1 && !force {
		return resp, false, errdefs.Conflict("image %s has several tags (%s): remove them one by one, or force the removal", id, strings.Join(tags, ", "))
	}
	remaining := slices.DeleteFunc(slices.Clone(tags), func(t string) bool { return slices.Contains(m.refs, t) })
	entries := slices.DeleteFunc(slices.Clone(s.index), func(e v1.Descriptor) bool {
		return slices.Contains(m.refs, refOf(e))
	})
	resp.Untagged = slices.Clone(m.refs)
	deleted := false
	if len(remaining) == 0 {
		if inUse(id.String()) {
			if !force {
				return api.ImageRemoveResponse{}, false, errdefs.Conflict("image %q (%s) is used by a container: remove the container first, or force the removal to untag the image and keep it for the container", ref, id)
			}
			// Keep the image, untagged, for the containers using it.
			for _, e := range s.index {
				if slices.Contains(m.refs, refOf(e)) {
					entries = append(entries, tagged(e, ""))
				}
			}
		} else {
			entries = slices.DeleteFunc(entries, func(e v1.Descriptor) bool {
				em, err := s.meta(e)
				return err == nil && em.id == id
			})
			resp.Deleted = []string{id.String()}
			deleted = true
		}
	}
	if err := s.writeIndex(normalize(entries)); err != nil {
		return api.ImageRemoveResponse{}, false, err
	}
	return resp, deleted, nil
}

// Prune empties the build cache (its entries and cache mounts), deletes
// dangling (untagged) images that are not inUse, then every blob and
// unpacked layer directory that no image in index.json needs, except
// blobs the registry received for a manifest to come (leased for the
// upload max age), and registry uploads left unfinished for longer than
// that.
// Images in use by containers are always in index.json (Remove keeps them
// there, untagged), so nothing a tag or a container uses is deleted.
// inUse may be nil.
func (s *Store) Prune(ctx context.Context, inUse func(id string) bool) (api.ImagePruneResponse, error) {
	if inUse == nil {
		inUse = func(string) bool { return false }
	}
	var cache CachePruneResult
	if s.cache != nil {
		var err error
		if cache, err = s.cache.drop(time.Time{}); err != nil {
			return api.ImagePruneResponse{}, err
		}
	}
	if err := s.lockIndex(); err != nil {
		return api.ImagePruneResponse{}, err
	}
	gs, err := s.groups(s.index)
	if err != nil {
		s.mu.Unlock()
		return api.ImagePruneResponse{}, err
	}
	drop := map[v1.Hash]bool{} // manifest digests
	for _, g := range gs {
		if len(g.tags) > 0 {
			// Untagged manifests of a tagged image add nothing.
			for _, e := range g.entries {
				if refOf(e) == "" {
					drop[e.Digest] = true
				}
			}
			continue
		}
		if inUse(g.id.String()) {
			continue
		}
		for _, e := range g.entries {
			drop[e.Digest] = true
		}
	}
	// Untagged content that is not an image (an artifact a pushed tag
	// moved off) has no group: nothing but its entry keeps it.
	for _, e := range s.index {
		if refOf(e) == "" {
			if _, err := s.meta(e); errors.Is(err, errNotImage) {
				drop[e.Digest] = true
			}
		}
	}
	if len(drop) > 0 {
		entries := slices.DeleteFunc(slices.Clone(s.index), func(e v1.Descriptor) bool {
			return refOf(e) == "" && drop[e.Digest]
		})
		if err := s.writeIndex(entries); err != nil {
			s.mu.Unlock()
			return api.ImagePruneResponse{}, err
		}
	}
	resp, trash, err := s.sweepLocked()
	s.mu.Unlock()
	if err != nil {
		return resp, err
	}
	s.pruneUploads()
	freed, err := emptyTrash(trash)
	resp.BytesFreed += freed + cache.BytesFreed
	resp.BuildCacheEntriesDeleted = cache.Entries
	return resp, err
}

// manifestRefs is what any manifest, index or artifact names: the
// descriptors the store keeps for it.
type manifestRefs struct {
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
}

// reachableLocked returns every blob and layer chain (hex) the entries
// need. An index entry needs all its children that are present.
func (s *Store) reachableLocked(entries []v1.Descriptor) (map[v1.Hash]bool, map[string]bool, error) {
	blobs := map[v1.Hash]bool{}
	chains := map[string]bool{}
	var walk func(d v1.Descriptor, top bool) error
	walk = func(d v1.Descriptor, top bool) error {
		if blobs[d.Digest] {
			return nil
		}
		if !top && !s.hasBlob(d.Digest, -1) {
			return nil // a platform of an index that was never fetched
		}
		blobs[d.Digest] = true
		raw, err := s.readBlob(d.Digest)
		if err != nil {
			return err
		}
		var mf manifestRefs
		if err := json.Unmarshal(raw, &mf); err != nil {
			if d.MediaType.IsIndex() || d.MediaType.IsImage() {
				return errdefs.Invalid("manifest %s: %v", d.Digest, err)
			}
			return nil // content the registry stored as it came
		}
		for _, c := range mf.Manifests {
			if err := walk(c, false); err != nil {
				return err
			}
		}
		if mf.Config != nil {
			blobs[mf.Config.Digest] = true
		}
		for _, l := range mf.Layers {
			blobs[l.Digest] = true
		}
		if d.MediaType.IsImage() {
			if m, err := s.meta(d); err == nil {
				for _, c := range m.chains {
					chains[c.Hex] = true
				}
			}
		}
		return nil
	}
	for _, e := range entries {
		if err := walk(e, true); err != nil {
			return nil, nil, fmt.Errorf("find what image %s needs: %w", e.Digest, err)
		}
	}
	// The build cache's layers stay while an entry names them.
	if s.cache != nil {
		for _, h := range s.cache.blobs() {
			blobs[h] = true
		}
	}
	return blobs, chains, nil
}

// sweepLocked deletes every blob that neither index.json nor a running
// operation (a pin) needs, and moves every such layer directory into a
// trash directory under layers/ for emptyTrash to delete once the lock is
// released. The caller holds the index write lock (lockIndex), so no
// reader is between looking an image up and pinning what it uses. It
// stops without deleting anything if it cannot read what an index entry
// needs.
func (s *Store) sweepLocked() (resp api.ImagePruneResponse, trash []string, err error) {
	blobs, chains, err := s.reachableLocked(s.index)
	if err != nil {
		return resp, nil, err
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	for _, alg := range digestAlgorithms {
		dir := filepath.Join(s.imagesDir, "blobs", alg)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			h := v1.Hash{Algorithm: alg, Hex: e.Name()}
			if !validDigest(h) || blobs[h] || s.pins[blobKey(h)] > 0 || s.leasedLocked(h) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
				resp.BlobsDeleted++
				resp.BytesFreed += fi.Size()
			}
		}
	}
	if ents, err := os.ReadDir(s.layersDir); err == nil {
		for _, e := range ents {
			n := e.Name()
			if !isHex64(n) || chains[n] || s.pins[layerKey(n)] > 0 {
				continue
			}
			// Move it out of the way now; delete the tree unlocked.
			t, err := os.MkdirTemp(s.layersDir, tmpPrefix+"del-")
			if err != nil {
				continue
			}
			if err := os.Rename(filepath.Join(s.layersDir, n), filepath.Join(t, n)); err != nil {
				os.Remove(t)
				continue
			}
			resp.LayersDeleted++
			trash = append(trash, t)
		}
	}
	// Forget the metadata of deleted images; keep that of images being
	// written (pinned), which are about to enter the index.
	s.metaMu.Lock()
	for h := range s.metas {
		if !blobs[h] && s.pins[blobKey(h)] == 0 {
			delete(s.metas, h)
		}
	}
	s.metaMu.Unlock()
	return resp, trash, nil
}

// emptyTrash deletes the layer directories sweepLocked moved away and
// returns the bytes they held.
func emptyTrash(trash []string) (int64, error) {
	var freed int64
	for _, t := range trash {
		freed += dirSize(t)
		if err := os.RemoveAll(t); err != nil {
			return freed, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("delete layer directory: %w", err))
		}
	}
	return freed, nil
}

func isHex64(s string) bool { return len(s) == 64 && hexRE.MatchString(s) }

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
