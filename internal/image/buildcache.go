package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api/errdefs"
)

// Names of the build cache's files under <root>/buildcache.
const (
	buildCacheIndex = "index.json"
	// BuildCacheMounts is the directory, under the build cache's, of
	// the RUN --mount=type=cache directories; the cache's Prune and
	// Size include it.
	BuildCacheMounts = "mounts"
)

// BuildCache is the layer cache of image builds: the result of each build
// step (a layer, or none) stored under the step's key. Its layers are
// blobs of the store, kept by the store's sweeps while an entry names
// them; its index of keys, <root>/buildcache/index.json, is replaced
// atomically on each change, so it survives restarts and crashes. An
// entry whose blob has gone is a miss. It is safe for concurrent use.
type BuildCache struct {
	s   *Store
	dir string

	mu      sync.Mutex
	entries map[string]*cacheEntry
	dirty   bool // last-used times changed since the index was written
}

// cacheEntry is the stored result of one build step.
type cacheEntry struct {
	// Layer is the step's layer, nil when the step changed nothing.
	Layer *cacheLayer `json:"layer,omitempty"`
	// Newest is the newest mtime the layer holds, as the builder
	// reported it.
	Newest   time.Time `json:"newest,omitzero"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
}

// cacheLayer names a layer blob.
type cacheLayer struct {
	Digest    v1.Hash         `json:"digest"`
	DiffID    v1.Hash         `json:"diffID"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType"`
}

// cacheIndexFile is the content of index.json.
type cacheIndexFile struct {
	Version int                    `json:"version"`
	Entries map[string]*cacheEntry `json:"entries"`
}

// openBuildCache reads (creating the directory if needed) the build
// cache under dir. An unreadable index starts an empty cache: the cache
// only saves work, so losing it loses nothing else.
func (s *Store) openBuildCache(dir string) (*BuildCache, error) {
	c := &BuildCache{s: s, dir: dir, entries: map[string]*cacheEntry{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("open build cache: %w", err))
	}
	raw, err := os.ReadFile(filepath.Join(dir, buildCacheIndex))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("open build cache: %w", err))
	}
	var f cacheIndexFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != 1 {
		s.log.Warn("the build cache index is unreadable: starting with an empty cache", "file", filepath.Join(dir, buildCacheIndex), "error", err)
		return c, nil
	}
	for k, e := range f.Entries {
		if e != nil {
			c.entries[k] = e
		}
	}
	return c, nil
}

// BuildCache returns the store's build cache.
func (s *Store) BuildCache() *BuildCache { return s.cache }

// MountsDir returns the directory of the build's cache mounts.
func (c *BuildCache) MountsDir() string { return filepath.Join(c.dir, BuildCacheMounts) }

// Lookup returns the result stored under key: its layer (nil when the
// step added none) and the newest mtime in it. ok is false when there is
// no entry or its blob has gone. The layer reads a file opened now, so it
// stays readable if a prune deletes the blob afterwards.
func (c *BuildCache) Lookup(key string) (layer v1.Layer, newest time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		return nil, time.Time{}, false
	}
	if e.Layer != nil {
		f, err := os.Open(c.s.blobPath(e.Layer.Digest))
		if err != nil {
			delete(c.entries, key)
			c.dirty = true
			return nil, time.Time{}, false
		}
		layer = &blobLayer{f: f, l: *e.Layer}
	}
	e.LastUsed = time.Now().UTC()
	c.dirty = true
	return layer, e.Newest, true
}

// Put stores a step's result under key: layer (nil when the step added
// none) is written as a blob of the store unless it is one already, then
// the index is written.
func (c *BuildCache) Put(ctx context.Context, key string, layer v1.Layer, newest time.Time) error {
	now := time.Now().UTC()
	e := &cacheEntry{Newest: newest, Created: now, LastUsed: now}
	if layer != nil {
		cl, err := describeLayer(layer)
		if err != nil {
			return err
		}
		// Pinned until the entry that keeps it from the sweep exists.
		pins := c.s.pin(blobKey(cl.Digest))
		defer pins.release()
		if _, err := c.s.putBlob(ctx, cl.Digest, cl.Size, layer.Compressed); err != nil {
			return fmt.Errorf("build cache: %w", err)
		}
		e.Layer = &cl
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = e
	return c.writeLocked()
}

func describeLayer(l v1.Layer) (cacheLayer, error) {
	var cl cacheLayer
	var err error
	if cl.Digest, err = l.Digest(); err != nil {
		return cl, fmt.Errorf("build cache: %w", err)
	}
	if cl.DiffID, err = l.DiffID(); err != nil {
		return cl, fmt.Errorf("build cache: %w", err)
	}
	if cl.Size, err = l.Size(); err != nil {
		return cl, fmt.Errorf("build cache: %w", err)
	}
	if cl.MediaType, err = l.MediaType(); err != nil {
		return cl, fmt.Errorf("build cache: %w", err)
	}
	return cl, nil
}

// Flush writes the last-used times Lookup changed.
func (c *BuildCache) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	return c.writeLocked()
}

// writeLocked replaces index.json; the caller holds c.mu.
func (c *BuildCache) writeLocked() error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(cacheIndexFile{Version: 1, Entries: c.entries}); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	if err := writeFileAtomic(c.dir, buildCacheIndex, buf.Bytes()); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write the build cache index: %w", err))
	}
	c.dirty = false
	return nil
}

// blobs returns the layer blobs the entries name.
func (c *BuildCache) blobs() []v1.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []v1.Hash
	for _, e := range c.entries {
		if e.Layer != nil {
			out = append(out, e.Layer.Digest)
		}
	}
	return out
}

// Size returns the bytes the cache holds: its distinct layer blobs
// (also those images share) and its cache mounts.
func (c *BuildCache) Size() int64 {
	var n int64
	seen := map[v1.Hash]bool{}
	for _, h := range c.blobs() {
		if seen[h] {
			continue
		}
		seen[h] = true
		if fi, err := os.Stat(c.s.blobPath(h)); err == nil {
			n += fi.Size()
		}
	}
	return n + dirSize(c.MountsDir())
}

// CachePruneResult is what BuildCache.Prune removed.
type CachePruneResult struct {
	Entries    int   // cache entries dropped
	Mounts     int   // cache mount directories removed
	BytesFreed int64 // blobs deleted and mount directories removed
}

// Prune drops the entries last used before `before` (every entry when
// before is zero) and the cache mount directories not modified since,
// then deletes the blobs nothing else needs.
func (c *BuildCache) Prune(ctx context.Context, before time.Time) (CachePruneResult, error) {
	res, err := c.drop(before)
	if err != nil {
		return res, err
	}
	if err := c.s.lockIndex(); err != nil {
		return res, err
	}
	sw, trash, err := c.s.sweepLocked()
	c.s.mu.Unlock()
	if err != nil {
		return res, err
	}
	freed, err := emptyTrash(trash)
	res.BytesFreed += sw.BytesFreed + freed
	return res, err
}

// drop forgets entries and removes cache mounts, without sweeping.
func (c *BuildCache) drop(before time.Time) (CachePruneResult, error) {
	var res CachePruneResult
	c.mu.Lock()
	for k, e := range c.entries {
		if before.IsZero() || e.LastUsed.Before(before) {
			delete(c.entries, k)
			res.Entries++
		}
	}
	var err error
	if res.Entries > 0 {
		err = c.writeLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return res, err
	}
	ents, _ := os.ReadDir(c.MountsDir())
	for _, e := range ents {
		p := filepath.Join(c.MountsDir(), e.Name())
		if !before.IsZero() {
			if fi, err := e.Info(); err != nil || !fi.ModTime().Before(before) {
				continue
			}
		}
		n := dirSize(p)
		if err := os.RemoveAll(p); err != nil {
			return res, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("remove build cache mount %s: %w", e.Name(), err))
		}
		res.Mounts++
		res.BytesFreed += n
	}
	return res, nil
}

// blobLayer is a layer blob of the store read through a file opened when
// the cache was looked up.
type blobLayer struct {
	f *os.File
	l cacheLayer
}

var _ v1.Layer = (*blobLayer)(nil)

// Digest returns the compressed digest.
func (b *blobLayer) Digest() (v1.Hash, error) { return b.l.Digest, nil }

// DiffID returns the uncompressed digest.
func (b *blobLayer) DiffID() (v1.Hash, error) { return b.l.DiffID, nil }

// Size returns the compressed size.
func (b *blobLayer) Size() (int64, error) { return b.l.Size, nil }

// MediaType returns the media type the layer was stored with.
func (b *blobLayer) MediaType() (types.MediaType, error) { return b.l.MediaType, nil }

// Compressed returns the blob's bytes.
func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(b.f, 0, b.l.Size)), nil
}

// Uncompressed returns the layer's tar stream.
func (b *blobLayer) Uncompressed() (io.ReadCloser, error) {
	return decompress(io.NewSectionReader(b.f, 0, b.l.Size))
}
