package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
	"skiff.dev/skiff/internal/image/unpack"
)

// Annotations read and written on index.json entries.
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// Names and limits of the files the store keeps.
const (
	ociLayoutFile    = "oci-layout"
	indexFile        = "index.json"
	ociLayoutContent = `{"imageLayoutVersion":"1.0.0"}`
	// tmpDirName is the directory under images/ for blobs being written
	// and archives being imported.
	tmpDirName = ".tmp"
	// tmpPrefix starts the names of temporary files and of unpacks in
	// progress under layers/.
	tmpPrefix = ".tmp-"
	// maxMetadataSize bounds manifests, configs and index files.
	maxMetadataSize int64 = 32 << 20
)

// applyFunc unpacks one layer tar stream into dir; it is unpack.Apply
// outside tests.
type applyFunc func(ctx context.Context, dir string, r io.Reader, opts unpack.Options) (unpack.Stats, error)

// Store is an image store: an OCI image layout under <root>/images and one
// unpacked directory per layer chain under <root>/layers. It is safe for
// concurrent use.
type Store struct {
	imagesDir string
	layersDir string
	tmpDir    string
	blobsDir  string
	lp        layout.Path
	apply     applyFunc
	// maxImageSize bounds image data (see WithMaxImageSize).
	maxImageSize int64
	log          *slog.Logger
	// beforeLoadMeta, when set (by tests), runs on a metadata cache miss
	// before the manifest and config are read from disk.
	beforeLoadMeta func(v1.Descriptor)
	// lazy, when set (by tests of Resolve's own unpacking), leaves the
	// layers of saved, imported and pulled images for Resolve to unpack.
	lazy bool

	// mu guards the in-memory copy of index.json and, with pins, the
	// files it names. Index writers hold it for writing while they
	// replace the file, and so does the sweep that deletes what the index
	// no longer needs; readers hold it for reading while they look an
	// image up and read or pin its blobs (see readIndex).
	mu    sync.RWMutex
	index []v1.Descriptor
	stamp fileStamp

	// metas caches parsed manifests and configs by manifest digest; they
	// are content-addressed, so never stale.
	metaMu sync.Mutex
	metas  map[v1.Hash]*imageMeta

	// pins protects blobs and layer dirs an operation is working with
	// from the sweep, also once the index no longer names them: keys are
	// blob digests and "layer:"+chain hex. The sweep holds pinMu while it
	// decides and deletes.
	pinMu sync.Mutex
	pins  map[string]int
	// leases keep blobs the registry received, until a time, for the
	// manifest that will name them (LeaseBlob); guarded by pinMu.
	leases map[v1.Hash]time.Time
	// uploadMaxAge bounds unfinished registry uploads and leases.
	uploadMaxAge time.Duration

	chainMu    sync.Mutex
	chainLocks map[string]*chainLock

	// cache is the build cache under <root>/buildcache.
	cache *BuildCache

	// unpacks counts layers actually unpacked (for tests and metrics).
	unpacks atomic.Int64
	// adopted counts prepared layer directories moved into place.
	adopted atomic.Int64
}

// fileStamp identifies one version of index.json on disk, so a change made
// by another program (umoci, skopeo) is noticed and reloaded.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// WithLogger sets the logger that records what the store does on its own,
// such as the device nodes left out of a layer. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open opens (creating if needed) the store under root: the OCI layout in
// root/images and unpacked layers in root/layers. It removes temporary
// files left by a crash.
func Open(root string, opts ...Option) (*Store, error) {
	if root == "" {
		return nil, errdefs.Invalid("open image store: root directory is empty")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	s := &Store{
		imagesDir:  filepath.Join(root, "images"),
		layersDir:  filepath.Join(root, "layers"),
		metas:      map[v1.Hash]*imageMeta{},
		pins:       map[string]int{},
		chainLocks: map[string]*chainLock{},
		apply:      unpack.Apply,
		log:        slog.Default(),

		maxImageSize: DefaultMaxImageSize,
		uploadMaxAge: DefaultUploadMaxAge,
	}
	for _, o := range opts {
		o(s)
	}
	s.tmpDir = filepath.Join(s.imagesDir, tmpDirName)
	s.blobsDir = filepath.Join(s.imagesDir, "blobs", "sha256")
	s.lp = layout.Path(s.imagesDir)
	for _, d := range []string{s.blobsDir, s.layersDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("open image store: %w", err))
		}
	}
	if err := s.cleanTemp(); err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("open image store: remove temporary files: %w", err))
	}
	if _, err := os.Stat(filepath.Join(s.imagesDir, ociLayoutFile)); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(s.imagesDir, ociLayoutFile, []byte(ociLayoutContent)); err != nil {
			return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("open image store: %w", err))
		}
	}
	if _, err := os.Stat(filepath.Join(s.imagesDir, indexFile)); errors.Is(err, fs.ErrNotExist) {
		if err := s.writeIndex(nil); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	} else {
		s.mu.Lock()
		err := s.loadIndexLocked()
		s.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if s.cache, err = s.openBuildCache(filepath.Join(root, "buildcache")); err != nil {
		return nil, err
	}
	return s, nil
}

// cleanTemp removes what a crashed write or unpack left behind: the temp
// directory under images/ and layers/.tmp-* directories.
func (s *Store) cleanTemp() error {
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return err
	}
	if err := os.MkdirAll(s.tmpDir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.layersDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(s.layersDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// readIndex returns the current index entries with the index lock held,
// reloading index.json first if another program replaced it; unlock
// releases the lock. The slice must not be modified.
//
// While the lock is held every blob and layer directory the entries need
// stays on disk: Remove and Prune change the index and delete files only
// under the write lock. So a reader looks images up, reads their metadata
// and pins what it will go on using (pinImage) before it unlocks, never
// after: once unlocked, its entries may name images that are gone.
func (s *Store) readIndex() (entries []v1.Descriptor, unlock func(), err error) {
	s.mu.RLock()
	fresh, err := s.freshLocked()
	if err == nil && fresh {
		return s.index, s.mu.RUnlock, nil
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	// Another program changed index.json: reload it, and read under the
	// write lock rather than let go and race the next change.
	if err := s.lockIndex(); err != nil {
		return nil, nil, err
	}
	return s.index, s.mu.Unlock, nil
}

// freshLocked reports whether the in-memory index matches index.json.
func (s *Store) freshLocked() (bool, error) {
	fi, err := os.Stat(filepath.Join(s.imagesDir, indexFile))
	if err != nil {
		return false, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read image index: %w", err))
	}
	return stampOf(fi) == s.stamp, nil
}

// lockIndex takes the index write lock with the in-memory copy up to date.
func (s *Store) lockIndex() error {
	s.mu.Lock()
	fresh, err := s.freshLocked()
	if err == nil && !fresh {
		err = s.loadIndexLocked()
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *Store) loadIndexLocked() error {
	p := filepath.Join(s.imagesDir, indexFile)
	f, err := os.Open(p)
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read image index: %w", err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read image index: %w", err))
	}
	var im v1.IndexManifest
	dec := json.NewDecoder(limitReader(f, maxMetadataSize, errMetadataTooLarge))
	if err := dec.Decode(&im); err != nil {
		return errdefs.Invalid("read image index %s: %v: restore it from a backup or move it away to start empty", p, err)
	}
	s.index = im.Manifests
	s.stamp = stampOf(fi)
	return nil
}

// writeIndex replaces index.json with entries (atomically, durably) and
// updates the in-memory copy. The caller holds s.mu for writing (or is
// Open). Every blob the entries name must already be on disk and synced.
func (s *Store) writeIndex(entries []v1.Descriptor) error {
	if entries == nil {
		entries = []v1.Descriptor{}
	}
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(im); err != nil {
		return fmt.Errorf("encode image index: %w", err)
	}
	if err := writeFileAtomic(s.imagesDir, indexFile, buf.Bytes()); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write image index: %w", err))
	}
	fi, err := os.Stat(filepath.Join(s.imagesDir, indexFile))
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("write image index: %w", err))
	}
	s.index = entries
	s.stamp = stampOf(fi)
	return nil
}

// writeFileAtomic writes data to dir/name durably (see
// fsutil.WriteFileAtomic), so a crash leaves the old or the new content;
// its temporary file starts with tmpPrefix, which Open clears.
func writeFileAtomic(dir, name string, data []byte) error {
	return fsutil.WriteFileAtomic(filepath.Join(dir, name), data, 0o644, true)
}

func syncDir(dir string) error { return fsutil.SyncDir(dir) }

// refOf returns the fully qualified reference an index entry carries, ""
// for an untagged entry.
func refOf(d v1.Descriptor) string {
	return d.Annotations[annotationRefName]
}

func tagged(d v1.Descriptor, ref string) v1.Descriptor {
	e := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	if ref != "" {
		e.Annotations = map[string]string{annotationRefName: ref}
	}
	return e
}
