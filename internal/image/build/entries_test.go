package build

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// countedLayer counts how often its stream is opened.
type countedLayer struct {
	v1.Layer
	opened int
}

func (l *countedLayer) Uncompressed() (io.ReadCloser, error) {
	l.opened++
	return l.Layer.Uncompressed()
}

// TestEntryCache: a layer listed once is not read again; the least
// recently used layer goes first when the cache is full; the tree built
// from cached entries is the one built from the stream.
func TestEntryCache(t *testing.T) {
	ctx := context.Background()
	var ls []*countedLayer
	for i := range 3 {
		ls = append(ls, &countedLayer{Layer: filesLayer(t, i, 64)})
	}
	c := &entryCache{maxEntries: 128, layers: map[v1.Hash]*cachedEntries{}}
	first, err := c.get(ctx, ls[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 64 {
		t.Fatalf("%d entries, want 64", len(first))
	}
	again, err := c.get(ctx, ls[0])
	if err != nil || len(again) != 64 || ls[0].opened != 1 {
		t.Fatalf("second get: %v, %d entries, stream opened %d times", err, len(again), ls[0].opened)
	}
	c.get(ctx, ls[1])
	c.get(ctx, ls[0]) // 0 is now more recent than 1
	c.get(ctx, ls[2]) // full: 1 goes
	if c.total != 128 || len(c.layers) != 2 {
		t.Fatalf("cache holds %d entries of %d layers, want 128 of 2", c.total, len(c.layers))
	}
	c.get(ctx, ls[0])
	c.get(ctx, ls[1])
	if ls[0].opened != 1 || ls[1].opened != 2 {
		t.Fatalf("streams opened %d and %d times, want 1 (kept) and 2 (evicted)", ls[0].opened, ls[1].opened)
	}

	fromStream := newTree()
	rc, err := ls[2].Layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := fromStream.applyLayer(rc, layerSource{ls[2]}, 1); err != nil {
		t.Fatal(err)
	}
	fromCache := newTree()
	entries, _ := c.get(ctx, ls[2])
	fromCache.applyEntries(entries, layerSource{ls[2]}, 1)
	if a, b := len(fromStream.root.children), len(fromCache.root.children); a != b || a == 0 {
		t.Fatalf("trees have %d and %d entries at the root", a, b)
	}
	for name, n := range fromStream.root.children {
		m := fromCache.root.children[name]
		if m == nil || m.size != n.size || m.mode != n.mode || m.typ != n.typ {
			t.Fatalf("%s differs: %+v and %+v", name, n, m)
		}
	}
}

// filesLayer is a layer of n small files, distinct for each seed.
func filesLayer(t *testing.T, seed, n int) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range n {
		body := fmt.Sprintf("layer %d file %d\n", seed, i)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%03d", i), Mode: 0o640 + int64(i%2), Size: int64(len(body)), ModTime: testTime}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}
