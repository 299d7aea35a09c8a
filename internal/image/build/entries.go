package build

import (
	"archive/tar"
	"context"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerEntry is one entry of a layer's tar stream: its header, with only
// what a tree node takes from it, and its position in the stream.
type layerEntry struct {
	h       *tar.Header
	ordinal int
}

// readEntries lists the entries of the tar stream r.
func readEntries(r io.Reader) ([]layerEntry, error) {
	tr := tar.NewReader(r)
	var out []layerEntry
	for ordinal := 0; ; ordinal++ {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, layerEntry{h: slimHeader(h), ordinal: ordinal})
	}
}

// slimHeader keeps the fields of h that nodeFromHeader and applyEntries
// read: a cached list holds no user names, access times or PAX records
// other than extended attributes.
func slimHeader(h *tar.Header) *tar.Header {
	return &tar.Header{Typeflag: h.Typeflag, Name: h.Name, Linkname: h.Linkname, Size: h.Size, Mode: h.Mode,
		Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime, Devmajor: h.Devmajor, Devminor: h.Devminor,
		PAXRecords: xattrRecords(h.PAXRecords)}
}

// entryCache keeps the entry lists of the layers builds read, by digest:
// a build on a base it built on before lists the base's files without
// decompressing its layers again (3 s for a Debian root with a Go
// toolchain). Layers are content-addressed, so a list never goes stale.
// It holds at most maxEntries entries (about 250 bytes each, so 150000
// are some 40 MB: a Debian root with a Go toolchain has 22000); the
// layers used least recently go first.
type entryCache struct {
	mu         sync.Mutex
	maxEntries int
	total      int
	tick       int64
	layers     map[v1.Hash]*cachedEntries
}

type cachedEntries struct {
	entries []layerEntry
	used    int64
}

// layerLists is the cache of the builds of this process.
var layerLists = &entryCache{maxEntries: 150_000, layers: map[v1.Hash]*cachedEntries{}}

// get returns the entries of l, from the cache or read from its
// uncompressed stream.
func (c *entryCache) get(ctx context.Context, l v1.Layer) ([]layerEntry, error) {
	d, err := l.Digest()
	if err == nil {
		c.mu.Lock()
		if ce, ok := c.layers[d]; ok {
			c.tick++
			ce.used = c.tick
			c.mu.Unlock()
			return ce.entries, nil
		}
		c.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	entries, err := readEntries(rc)
	if err != nil || d == (v1.Hash{}) {
		return entries, err
	}
	c.put(d, entries)
	return entries, nil
}

func (c *entryCache) put(d v1.Hash, entries []layerEntry) {
	if len(entries) > c.maxEntries {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.layers[d]; ok {
		return
	}
	for c.total+len(entries) > c.maxEntries {
		var oldest v1.Hash
		first := true
		for k, ce := range c.layers {
			if first || ce.used < c.layers[oldest].used {
				oldest, first = k, false
			}
		}
		c.total -= len(c.layers[oldest].entries)
		delete(c.layers, oldest)
	}
	c.tick++
	c.layers[d] = &cachedEntries{entries: entries, used: c.tick}
	c.total += len(entries)
}

// applyLayerOf applies the layer l to t as generation gen.
func (t *fsTree) applyLayerOf(ctx context.Context, l v1.Layer, gen int) error {
	entries, err := layerLists.get(ctx, l)
	if err != nil {
		return err
	}
	t.applyEntries(entries, layerSource{l}, gen)
	return nil
}
