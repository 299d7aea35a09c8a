package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"skiff.dev/skiff/api/errdefs"
)

// layerJobs bounds how many layers of one image are written at once.
const layerJobs = 3

func blobKey(h v1.Hash) string     { return h.String() }
func layerKey(chain string) string { return "layer:" + chain }

// pinSet is a set of pins one operation holds; release drops them all.
type pinSet struct {
	s    *Store
	keys []string
}

// pin protects blobs and layer dirs from the sweep until released. Pin a
// blob before checking whether it exists, so a sweep cannot delete it in
// between.
func (s *Store) pin(keys ...string) *pinSet {
	p := &pinSet{s: s}
	p.add(keys...)
	return p
}

func (p *pinSet) add(keys ...string) {
	p.s.pinMu.Lock()
	defer p.s.pinMu.Unlock()
	for _, k := range keys {
		p.s.pins[k]++
	}
	p.keys = append(p.keys, keys...)
}

func (p *pinSet) release() {
	p.s.pinMu.Lock()
	defer p.s.pinMu.Unlock()
	for _, k := range p.keys {
		if p.s.pins[k]--; p.s.pins[k] <= 0 {
			delete(p.s.pins, k)
		}
	}
	p.keys = nil
}

// pinImage pins what the image m names needs: its index entry, manifest,
// config and layer blobs and, with layers set, its layer directories. The
// caller holds the index lock (readIndex or lockIndex), so all the blobs
// are present and no sweep can run before the pins are in place.
func (s *Store) pinImage(m match, layers bool) *pinSet {
	mf := m.meta.manifest
	keys := []string{blobKey(m.entry.Digest), blobKey(m.meta.desc.Digest), blobKey(mf.Config.Digest)}
	for _, l := range mf.Layers {
		keys = append(keys, blobKey(l.Digest))
	}
	if layers {
		for _, c := range m.meta.chains {
			keys = append(keys, layerKey(c.Hex))
		}
	}
	return s.pin(keys...)
}

// ctxReader fails reads once ctx is done, so long copies stop on cancel.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

var _ io.Reader = ctxReader{}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func newSHA256() hash.Hash { return sha256.New() }

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

func digestBytes(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// hasBlob reports whether blob h is present (with the given size unless
// size < 0).
func (s *Store) hasBlob(h v1.Hash, size int64) bool {
	fi, err := os.Stat(s.blobPath(h))
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size)
}

// putBlob stores the content open yields as blob want, unless it is
// already present. It verifies the digest (and size when size >= 0) and
// syncs the file before renaming it into place. The caller has pinned
// want. created reports whether the blob was written.
func (s *Store) putBlob(ctx context.Context, want v1.Hash, size int64, open func() (io.ReadCloser, error)) (created bool, err error) {
	if want.Algorithm != "sha256" || len(want.Hex) != 64 {
		return false, errdefs.Invalid("unsupported digest %q: only sha256 is supported", want)
	}
	if s.hasBlob(want, size) {
		return false, nil
	}
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.tmpDir, "blob-")
	if err != nil {
		return false, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write blob %s: %w", want, err))
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	defer f.Close()
	// Stop reading where the descriptor says the blob ends (or at the
	// image size limit, for a blob of unknown size), rather than check
	// the size once a source that never ends has filled the disk.
	limit, over := size, errdefs.Invalid("blob %s: content is larger than the %d bytes its descriptor says: the source is corrupt", want, size)
	if size < 0 {
		limit, over = s.maxImageSize, s.tooLarge(fmt.Sprintf("blob %s", want))
	}
	h := newSHA256()
	n, err := io.Copy(io.MultiWriter(diskWriter{f}, h), limitReader(ctxReader{ctx, rc}, limit, over))
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, fmt.Errorf("write blob %s: %w", want, err)
	}
	if got := hashOf(h); got != want {
		return false, errdefs.Invalid("blob %s: content has digest %s: the source is corrupt", want, got)
	}
	if size >= 0 && n != size {
		return false, errdefs.Invalid("blob %s: content is %d bytes, its descriptor says %d", want, n, size)
	}
	return true, s.commitBlob(f, want)
}

// adoptBlob moves a file the store owns (under its temp dir) into place as
// blob want, checking its digest unless the caller has just computed it
// (verified). It is how an import avoids copying an archive's layers a
// second time.
func (s *Store) adoptBlob(path string, want v1.Hash, verified bool) (created bool, err error) {
	if s.hasBlob(want, -1) {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read %s: %w", path, err))
	}
	defer f.Close()
	if !verified {
		h := newSHA256()
		if _, err := io.Copy(h, f); err != nil {
			return false, fmt.Errorf("read %s: %w", path, err)
		}
		if got := hashOf(h); got != want {
			return false, errdefs.Invalid("blob %s: content has digest %s: the archive is corrupt", want, got)
		}
	}
	return true, s.commitBlob(f, want)
}

// commitBlob syncs f and renames it to blob want.
func (s *Store) commitBlob(f *os.File, want v1.Hash) error {
	if err := f.Chmod(0o644); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write blob %s: %w", want, err))
	}
	if err := f.Sync(); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write blob %s: %w", want, err))
	}
	if err := os.Rename(f.Name(), s.blobPath(want)); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write blob %s: %w", want, err))
	}
	return nil
}

// diskWriter marks write errors (a full disk) as ErrUnavailable, apart
// from errors reading the source.
type diskWriter struct{ f *os.File }

var _ io.Writer = diskWriter{}

func (w diskWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	return n, err
}

// putBytes stores b as blob want.
func (s *Store) putBytes(ctx context.Context, want v1.Hash, b []byte) (bool, error) {
	return s.putBlob(ctx, want, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// written collects the blobs one operation created, so a failed operation
// can remove them again.
type written struct {
	mu    sync.Mutex
	blobs []v1.Hash
}

func (w *written) add(created bool, h v1.Hash) {
	if !created {
		return
	}
	w.mu.Lock()
	w.blobs = append(w.blobs, h)
	w.mu.Unlock()
}

// writeImage writes img's layers, config and manifest as blobs (layers
// first, the manifest last, each verified against its digest) and returns
// the manifest's descriptor. It pins every blob in pins. adopt, when not
// nil, returns the path of a file the store may move into place for a
// layer digest ("" when there is none).
func (s *Store) writeImage(ctx context.Context, img v1.Image, pins *pinSet, w *written, adopt func(v1.Hash) string) (v1.Descriptor, *imageMeta, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("read manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("read manifest media type: %w", err)
	}
	if !mt.IsImage() {
		return v1.Descriptor{}, nil, errdefs.Invalid("manifest media type %q is not an image manifest", mt)
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(rawManifest)), Digest: digestBytes(rawManifest)}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("read config: %w", err)
	}
	meta, err := parseMeta(desc, rawManifest, func(h v1.Hash) ([]byte, error) {
		if got := digestBytes(rawConfig); got != h {
			return nil, errdefs.Invalid("config has digest %s, the manifest says %s: the source is corrupt", got, h)
		}
		return rawConfig, nil
	})
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	mf := meta.manifest
	// Refuse an image whose layers add up to more than the limit before
	// fetching any of them.
	var total int64
	for _, l := range mf.Layers {
		if l.Size < 0 {
			return v1.Descriptor{}, nil, errdefs.Invalid("layer %s has a negative size in the manifest: the source is corrupt", l.Digest)
		}
		if total += min(l.Size, s.maxImageSize+1); total > s.maxImageSize {
			return v1.Descriptor{}, nil, s.tooLarge("the image's compressed layer data, as its manifest lists it,")
		}
	}
	keys := []string{blobKey(desc.Digest), blobKey(mf.Config.Digest)}
	for _, l := range mf.Layers {
		keys = append(keys, blobKey(l.Digest))
	}
	pins.add(keys...)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(layerJobs)
	for _, ld := range mf.Layers {
		g.Go(func() error {
			if !ld.MediaType.IsDistributable() {
				return errdefs.NotImplemented("layer %s has non-distributable media type %q, which skiff does not support", ld.Digest, ld.MediaType)
			}
			if adopt != nil {
				if p := adopt(ld.Digest); p != "" {
					if fi, err := os.Stat(p); err == nil && fi.Size() != ld.Size {
						return errdefs.Invalid("layer %s is %d bytes, its descriptor says %d", ld.Digest, fi.Size(), ld.Size)
					}
					created, err := s.adoptBlob(p, ld.Digest, false)
					w.add(created, ld.Digest)
					return err
				}
			}
			created, err := s.putBlob(gctx, ld.Digest, ld.Size, func() (io.ReadCloser, error) {
				l, err := img.LayerByDigest(ld.Digest)
				if err != nil {
					return nil, err
				}
				return l.Compressed()
			})
			w.add(created, ld.Digest)
			if err != nil {
				return fmt.Errorf("layer %s: %w", ld.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return v1.Descriptor{}, nil, err
	}
	created, err := s.putBytes(ctx, mf.Config.Digest, rawConfig)
	w.add(created, mf.Config.Digest)
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("config: %w", err)
	}
	created, err = s.putBytes(ctx, desc.Digest, rawManifest)
	w.add(created, desc.Digest)
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("manifest: %w", err)
	}
	if err := syncDir(s.blobsDir); err != nil {
		return v1.Descriptor{}, nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("sync blobs: %w", err))
	}
	s.metaMu.Lock()
	s.metas[desc.Digest] = meta
	s.metaMu.Unlock()
	return desc, meta, nil
}

// discard removes blobs a failed operation created, unless the index or
// another operation uses them.
func (s *Store) discard(w *written) {
	w.mu.Lock()
	blobs := w.blobs
	w.blobs = nil
	w.mu.Unlock()
	if len(blobs) == 0 {
		return
	}
	entries, unlock, err := s.readIndex()
	if err != nil {
		return
	}
	defer unlock()
	reach, _, err := s.reachableLocked(entries)
	if err != nil {
		return
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	for _, h := range blobs {
		if reach[h] || s.pins[blobKey(h)] > 1 {
			continue
		}
		if err := os.Remove(s.blobPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
	}
}
