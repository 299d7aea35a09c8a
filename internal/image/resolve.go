package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/unpack"
)

// Resolved is an image ready to run: its identity, its config and its
// unpacked layer directories.
type Resolved struct {
	// Ref is the fully qualified reference the lookup matched; "" when
	// the image was named by ID.
	Ref string
	// ID is the config digest ("sha256:...").
	ID string
	// Digest is the manifest digest.
	Digest string
	// Config is the image configuration.
	Config v1.ConfigFile
	// Layers are the unpacked layer directories, top layer first, ready
	// for overlay's lowerdir=.
	Layers []string
}

// Resolve finds the image ref names and makes sure all its layers are
// unpacked under <root>/layers/<chain-id-hex>. Each layer is unpacked once:
// concurrent Resolves of images sharing layers wait for one another, and
// a second Resolve does no work. A layer that fails to unpack leaves no
// directory behind and its error (errdefs.ErrInvalid for bad content)
// names the entry. A Remove or Prune running meanwhile does not delete the
// blobs and layer directories a Resolve in progress uses.
func (s *Store) Resolve(ctx context.Context, ref string) (*Resolved, error) {
	r, release, err := s.Hold(ctx, ref)
	if err != nil {
		return nil, err
	}
	release()
	return r, nil
}

// Hold resolves ref as Resolve does and keeps the image's blobs and layer
// directories from Remove and Prune until release is called, for a user
// that goes on reading them (a build stacking RUN steps on its base's
// layers).
func (s *Store) Hold(ctx context.Context, ref string) (r *Resolved, release func(), err error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return nil, nil, err
	}
	m, err := s.lookup(entries, ref)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	// Pin before unlocking: the unpacks below read the layer blobs and
	// stack on the layer directories after the index may have dropped
	// the image.
	pins := s.pinImage(m, true)
	unlock()
	defer func() {
		if err != nil {
			pins.release()
		}
	}()
	meta := m.meta

	dirs := make([]string, len(meta.chains)) // bottom first
	b := &budget{left: s.maxImageSize, over: s.tooLarge("the image's decompressed layer data")}
	for i, c := range meta.chains {
		dirs[i] = filepath.Join(s.layersDir, c.Hex)
		if err := s.ensureLayer(ctx, meta, i, dirs[:i], b, ""); err != nil {
			return nil, nil, err
		}
	}
	r = &Resolved{
		Ref:    m.ref,
		ID:     meta.id.String(),
		Digest: meta.desc.Digest.String(),
		Config: *meta.config.DeepCopy(),
		Layers: make([]string, len(dirs)),
	}
	for i, d := range dirs {
		r.Layers[len(dirs)-1-i] = d
	}
	return r, pins.release, nil
}

// chainLock serialises the unpacking of one layer chain.
type chainLock struct {
	mu   sync.Mutex
	refs int
}

func (s *Store) lockChain(hex string) func() {
	s.chainMu.Lock()
	l := s.chainLocks[hex]
	if l == nil {
		l = &chainLock{}
		s.chainLocks[hex] = l
	}
	l.refs++
	s.chainMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.chainMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.chainLocks, hex)
		}
		s.chainMu.Unlock()
	}
}

// ensureLayer makes sure layer i of meta is unpacked; lowers are the
// directories of the layers below it, bottom first. The caller has pinned
// the chain and the layer's blob. An unpack counts the decompressed layer
// against b. prepared, when not "", is a directory holding the layer
// unpacked already (see PreparedLayer): it is moved into place, and the
// layer unpacked from its blob only if that fails.
func (s *Store) ensureLayer(ctx context.Context, meta *imageMeta, i int, lowers []string, b *budget, prepared string) error {
	chain := meta.chains[i].Hex
	dir := filepath.Join(s.layersDir, chain)
	present := func() (bool, error) {
		_, err := os.Stat(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return err == nil, nil
		}
		return false, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("layer %s: %w", chain, err))
	}
	if ok, err := present(); ok || err != nil {
		return err
	}
	unlock := s.lockChain(chain)
	defer unlock()
	if ok, err := present(); ok || err != nil {
		return err
	}
	desc := meta.manifest.Layers[i]
	diffID := meta.config.RootFS.DiffIDs[i]
	if prepared != "" {
		parent := ""
		if len(lowers) > 0 {
			parent = lowers[len(lowers)-1]
		}
		err := s.adoptLayer(prepared, dir, parent)
		if err == nil {
			s.adopted.Add(1)
			return nil
		}
		s.log.Warn("could not move a built layer into place; unpacking it instead", "layer", desc.Digest.String(), "err", err)
	}
	if err := s.unpackLayer(ctx, desc.Digest, diffID, dir, lowers, b); err != nil {
		return fmt.Errorf("unpack layer %d (%s) of image %s: %w", i+1, desc.Digest, meta.id, err)
	}
	s.unpacks.Add(1)
	return nil
}

// unpackLayer unpacks blob into a temporary directory under layers/,
// checks the uncompressed content against diffID, and renames the
// directory to dir. On error nothing is left behind.
func (s *Store) unpackLayer(ctx context.Context, blob, diffID v1.Hash, dir string, lowersBottomFirst []string, b *budget) (err error) {
	f, err := os.Open(s.blobPath(blob))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.NotFound("blob %s is missing from the image store: pull or import the image again", blob)
		}
		return errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	defer f.Close()
	rc, err := decompress(f)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := newSHA256()
	tee := io.TeeReader(b.reader(rc), h)

	tmp, err := os.MkdirTemp(s.layersDir, tmpPrefix)
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	lowers := make([]string, len(lowersBottomFirst))
	for i, l := range lowersBottomFirst {
		lowers[len(lowers)-1-i] = l
	}
	st, err := s.apply(ctx, tmp, tee, unpack.Options{Lowers: lowers})
	if err != nil {
		return err
	}
	parent := ""
	if len(lowers) > 0 {
		parent = lowers[0]
	}
	if err := setLayerRoot(tmp, parent, st.Root); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	if st.SkippedDevices > 0 {
		s.log.Warn("the layer holds device nodes; they were left out, as every container gets its own /dev",
			"layer", blob.String(), "devices", st.SkippedDevices, "first", st.FirstSkippedDevice)
	}
	// The tar end marker and padding may follow the last entry unread.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return errdefs.Invalid("read layer: %v", err)
	}
	if got := hashOf(h); got != diffID {
		return errdefs.Invalid("layer content has digest %s but the image config says %s: the image is corrupt", got, diffID)
	}
	if err := syncFS(tmp); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("sync layer: %w", err))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	return syncDir(s.layersDir)
}

// syncFS flushes the filesystem holding dir, so an unpacked layer is on
// disk before its directory gets its real name.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// decompress returns the uncompressed content of r, which may be gzip,
// zstd or plain.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.Invalid("bad gzip stream: %v", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, errdefs.Invalid("bad zstd stream: %v", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}

// HoldLayers returns the unpacked layer directories of image ref, bottom
// first, with their diff IDs, kept from Remove and Prune until release is
// called: a build stacks its RUN steps on them rather than unpack its
// base image again.
func (s *Store) HoldLayers(ctx context.Context, ref string) (dirs []string, diffIDs []v1.Hash, release func(), err error) {
	r, release, err := s.Hold(ctx, ref)
	if err != nil {
		return nil, nil, nil, err
	}
	dirs = slices.Clone(r.Layers)
	slices.Reverse(dirs)
	return dirs, slices.Clone(r.Config.RootFS.DiffIDs), release, nil
}
