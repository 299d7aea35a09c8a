package unpack

import (
	"context"
	"io"
	"sync"
)

// writerChunk and writerQueue size the buffers between a Writer's
// producer and its unpack: up to 8 MiB in flight.
const (
	writerChunk = 256 << 10
	writerQueue = 32
)

var chunkPool = sync.Pool{New: func() any { return make([]byte, 0, writerChunk) }}

// Writer applies a layer tar written to it to a directory in the
// background, so that whatever produces the tar (a reader being hashed
// and compressed, a tar writer) works alongside the unpack instead of
// reading the layer a second time. The data is copied into a bounded
// queue of buffers. Write never fails because of the unpack: once the
// unpack has failed, the rest is discarded and Close reports the error.
type Writer struct {
	cur    []byte
	ch     chan []byte
	done   chan struct{}
	cancel context.CancelFunc
	closed bool
	stats  Stats
	err    error
}

var _ io.Writer = (*Writer)(nil)

// NewWriter starts applying what is written to the returned Writer to
// dir, as Apply does. Call Close once the whole tar is written, or Abort.
func NewWriter(ctx context.Context, dir string, opts Options) *Writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{ch: make(chan []byte, writerQueue), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		r := &chunkReader{ch: w.ch}
		w.stats, w.err = Apply(ctx, dir, r, opts)
		// Drain, so the producer never blocks on an unpack that stopped
		// (at the tar's end marker, or on an error).
		for c := range w.ch {
			chunkPool.Put(c[:0]) //nolint:staticcheck // slices are fine in a pool
		}
		if r.cur != nil {
			chunkPool.Put(r.cur[:0]) //nolint:staticcheck
		}
	}()
	return w
}

// Write queues a copy of p for the unpack.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.cur == nil {
			w.cur = chunkPool.Get().([]byte)
		}
		k := min(len(p), writerChunk-len(w.cur))
		w.cur = append(w.cur, p[:k]...)
		p = p[k:]
		if len(w.cur) == writerChunk {
			w.ch <- w.cur
			w.cur = nil
		}
	}
	return n, nil
}

// Close ends the tar, waits for the unpack and returns its result. On
// error the directory is left empty, as Apply leaves it.
func (w *Writer) Close() (Stats, error) {
	if !w.closed {
		w.closed = true
		if len(w.cur) > 0 {
			w.ch <- w.cur
		}
		w.cur = nil
		close(w.ch)
	}
	<-w.done
	w.cancel()
	return w.stats, w.err
}

// Abort stops the unpack and waits for it; the directory is left empty.
func (w *Writer) Abort() {
	w.cancel()
	w.Close()
}

// chunkReader reads the chunks a Writer queues.
type chunkReader struct {
	ch  chan []byte
	cur []byte
	off int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.off == len(r.cur) {
		if r.cur != nil {
			chunkPool.Put(r.cur[:0]) //nolint:staticcheck
		}
		c, ok := <-r.ch
		if !ok {
			r.cur = nil
			return 0, io.EOF
		}
		r.cur, r.off = c, 0
	}
	n := copy(p, r.cur[r.off:])
	r.off += n
	return n, nil
}
