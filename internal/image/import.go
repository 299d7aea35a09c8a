package image

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Import reads an image archive from r: an OCI archive (a tar of an OCI
// image layout: oci-layout, index.json, blobs/) or a `docker save` tar
// (manifest.json), either of them optionally gzip or zstd compressed as a
// whole; layers inside may be gzip, zstd or plain tars. Tags come from the
// archive (see the package documentation); untagged images are kept by
// ID. Images from a docker save archive are stored with OCI media types
// and keep their IDs. A bad archive is an errdefs.ErrInvalid error naming
// what is wrong, and leaves the store's index unchanged.
func (s *Store) Import(ctx context.Context, r io.Reader) ([]api.Image, error) {
	rc, err := decompress(r)
	if err != nil {
		if errdefs.Category(err) == nil {
			err = errdefs.Invalid("read archive: %v", err)
		}
		return nil, err
	}
	defer rc.Close()
	dir, err := os.MkdirTemp(s.tmpDir, "import-")
	if err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("import: %w", err))
	}
	defer os.RemoveAll(dir)
	if err := extractArchive(ctx, limitReader(rc, s.maxImageSize, s.tooLarge("the decompressed archive")), dir); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	switch {
	case isFile(filepath.Join(dir, "manifest.json")):
		return s.importDockerSave(ctx, dir)
	case isFile(filepath.Join(dir, indexFile)):
		return s.importLayout(ctx, dir, true)
	default:
		return nil, errdefs.Invalid("import: the archive has neither index.json (an OCI archive) nor manifest.json (a docker save archive)")
	}
}

// ImportLayout imports every image of the OCI image layout in dir (for an
// index, the image for this host's platform). Tags come from the entries'
// annotations. dir is only read.
func (s *Store) ImportLayout(ctx context.Context, dir string) ([]api.Image, error) {
	if !isFile(filepath.Join(dir, indexFile)) {
		return nil, errdefs.Invalid("import %s: not an OCI image layout: it has no index.json", dir)
	}
	return s.importLayout(ctx, dir, false)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// invalidSource classifies an error reading an archive or layout: errors
// already classified keep their category, others are the source's fault.
func invalidSource(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errdefs.Category(err) != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
		msg := strings.Replace(err.Error(), pe.Error(), filepath.Base(pe.Path)+" is missing from the archive", 1)
		return errdefs.Invalid("%s: %s", what, msg)
	}
	return errdefs.Invalid("%s: %v", what, err)
}

// importLayout imports the images of the layout in dir. When owned, dir
// belongs to the store and its layer files may be moved into place.
func (s *Store) importLayout(ctx context.Context, dir string, owned bool) ([]api.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, invalidSource("import", err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return nil, invalidSource("import: index.json", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, invalidSource("import: index.json", err)
	}
	var adopt func(v1.Hash) string
	if owned {
		adopt = func(h v1.Hash) string {
			p := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
			if h.Algorithm == "sha256" && isHex64(h.Hex) && isFile(p) {
				return p
			}
			return ""
		}
	}
	pins := s.pin()
	defer pins.release()
	w := &written{}
	var adds []addition
	for _, d := range im.Manifests {
		what := fmt.Sprintf("import: image %s", d.Digest)
		var img v1.Image
		want := d.Digest
		switch {
		case d.MediaType.IsImage():
			img, err = ii.Image(d.Digest)
		case d.MediaType.IsIndex():
			var child v1.ImageIndex
			child, err = ii.ImageIndex(d.Digest)
			if err != nil {
				break
			}
			var cim *v1.IndexManifest
			if cim, err = child.IndexManifest(); err != nil {
				break
			}
			var cd v1.Descriptor
			if cd, err = selectPlatform(cim.Manifests, hostPlatform()); err != nil {
				break
			}
			want = cd.Digest
			img, err = child.Image(cd.Digest)
		default:
			continue // an artifact, a signature: not an image
		}
		if err != nil {
			s.discard(w)
			return nil, invalidSource(what, err)
		}
		desc, _, err := s.writeImage(ctx, img, pins, w, adopt)
		if err == nil && desc.Digest != want {
			err = errdefs.Invalid("manifest content has digest %s: the source is corrupt", desc.Digest)
		}
		if err != nil {
			s.discard(w)
			return nil, invalidSource(what, err)
		}
		a := addition{desc: desc}
		if r := refName(d.Annotations); r != "" {
			a.refs = []string{r}
		}
		adds = append(adds, a)
	}
	if len(adds) == 0 {
		return nil, errdefs.Invalid("import: index.json lists no image manifest")
	}
	return s.commit(ctx, adds, w, pins)
}

// commit unpacks the layers of the images (so their first run unpacks
// nothing), adds the images to the index and returns them as the API
// shows them, one per image ID. On failure it removes the blobs w
// created. The caller has pinned the images' blobs in pins.
func (s *Store) commit(ctx context.Context, adds []addition, w *written, pins *pinSet) ([]api.Image, error) {
	for _, a := range adds {
		if s.lazy {
			break
		}
		m, err := s.meta(a.desc)
		if err == nil {
			err = s.unpackAll(ctx, m, a.prepared, pins)
		}
		if err != nil {
			s.discard(w)
			return nil, fmt.Errorf("unpack image %s: %w", a.desc.Digest, err)
		}
	}
	if err := s.lockIndex(); err != nil {
		s.discard(w)
		return nil, err
	}
	if err := s.writeIndex(withAdditions(s.index, adds)); err != nil {
		s.mu.Unlock()
		s.discard(w)
		return nil, err
	}
	// Read the result before unlocking: afterwards a Remove or Prune may
	// delete images the index named a moment ago.
	defer s.mu.Unlock()
	gs, err := s.groups(s.index)
	if err != nil {
		return nil, err
	}
	var out []api.Image
	seen := map[v1.Hash]bool{}
	for _, a := range adds {
		m, err := s.meta(a.desc)
		if err != nil {
			return nil, err
		}
		if seen[m.id] {
			continue
		}
		seen[m.id] = true
		for _, g := range gs {
			if g.id == m.id {
				out = append(out, toAPI(m, g.tags))
			}
		}
	}
	return out, nil
}

// Save stores img (e.g. a build result) under tags (references; short
// names go under "localhost/"). Without tags the image is kept untagged.
func (s *Store) Save(ctx context.Context, img v1.Image, tags ...string) (api.Image, error) {
	var refs []string
	for _, t := range tags {
		q, err := newTag(t)
		if err != nil {
			return api.Image{}, err
		}
		refs = append(refs, q)
	}
	pins := s.pin()
	defer pins.release()
	w := &written{}
	desc, _, err := s.writeImage(ctx, img, pins, w, nil)
	if err != nil {
		s.discard(w)
		return api.Image{}, fmt.Errorf("save image: %w", err)
	}
	out, err := s.commit(ctx, []addition{{desc: desc, refs: refs, prepared: preparedDirs(img)}}, w, pins)
	if err != nil {
		return api.Image{}, err
	}
	return out[0], nil
}

// layerFile is what reading a docker save layer file found.
type layerFile struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
}

// inspectLayer reads a layer file once, computing its digest, its diff ID
// (digest of the uncompressed tar) and its OCI media type.
func (s *Store) inspectLayer(ctx context.Context, p string) (layerFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return layerFile{}, err
	}
	defer f.Close()
	h := newSHA256()
	br := bufio.NewReaderSize(io.TeeReader(ctxReader{ctx, f}, h), 64<<10)
	magic, _ := br.Peek(4)
	lf := layerFile{mediaType: types.OCIUncompressedLayer}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		lf.mediaType = types.OCILayer
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		lf.mediaType = types.OCILayerZStd
	}
	rc, err := decompress(br)
	if err != nil {
		return layerFile{}, err
	}
	defer rc.Close()
	dh := newSHA256()
	if _, err := io.Copy(dh, limitReader(rc, s.maxImageSize, s.tooLarge("the decompressed layer"))); err != nil {
		return layerFile{}, err
	}
	// Hash whatever follows the compressed stream too.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return layerFile{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return layerFile{}, err
	}
	lf.digest, lf.diffID, lf.size = hashOf(h), hashOf(dh), fi.Size()
	return lf, nil
}

// importDockerSave imports the images listed in the manifest.json of an
// extracted docker save archive.
func (s *Store) importDockerSave(ctx context.Context, dir string) ([]api.Image, error) {
	raw, err := readFileLimited(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, invalidSource("import: manifest.json", err)
	}
	var mf tarball.Manifest
	if err := json.Unmarshal(raw, &mf); err != nil {
		return nil, errdefs.Invalid("import: manifest.json: %v", err)
	}
	if len(mf) == 0 {
		return nil, errdefs.Invalid("import: manifest.json lists no image")
	}
	pins := s.pin()
	defer pins.release()
	w := &written{}
	fail := func(err error) ([]api.Image, error) {
		s.discard(w)
		return nil, err
	}
	seen := map[string]layerFile{}
	var adds []addition
	for i, d := range mf {
		what := fmt.Sprintf("import: manifest.json image %d", i+1)
		a, err := s.importDockerImage(ctx, dir, d, seen, pins, w)
		if err != nil {
			return fail(invalidSource(what, err))
		}
		adds = append(adds, a)
	}
	if err := syncDir(s.blobsDir); err != nil {
		return fail(errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("import: sync blobs: %w", err)))
	}
	return s.commit(ctx, adds, w, pins)
}

func (s *Store) importDockerImage(ctx context.Context, dir string, d tarball.Descriptor, seen map[string]layerFile, pins *pinSet, w *written) (addition, error) {
	if len(d.LayerSources) > 0 {
		return addition{}, errdefs.NotImplemented("the image has foreign (non-distributable) layers, which skiff does not support")
	}
	var refs []string
	for _, t := range d.RepoTags {
		q, err := newTag(t)
		if err != nil {
			return addition{}, fmt.Errorf("RepoTags: %w", err)
		}
		refs = append(refs, q)
	}
	cfgPath, err := archivePath(d.Config)
	if err != nil {
		return addition{}, err
	}
	rawCfg, err := readFileLimited(filepath.Join(dir, filepath.FromSlash(cfgPath)))
	if err != nil {
		return addition{}, fmt.Errorf("config %q: %w", d.Config, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return addition{}, errdefs.Invalid("config %q: %v", d.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(d.Layers) {
		return addition{}, errdefs.Invalid("it lists %d layers but its config lists %d diff_ids", len(d.Layers), len(cfg.RootFS.DiffIDs))
	}
	mf := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: digestBytes(rawCfg)},
		Layers:        []v1.Descriptor{},
	}
	for j, l := range d.Layers {
		lp, err := archivePath(l)
		if err != nil {
			return addition{}, err
		}
		full := filepath.Join(dir, filepath.FromSlash(lp))
		lf, ok := seen[lp]
		if !ok {
			if lf, err = s.inspectLayer(ctx, full); err != nil {
				return addition{}, fmt.Errorf("layer %q: %w", l, err)
			}
			seen[lp] = lf
		}
		if lf.diffID != cfg.RootFS.DiffIDs[j] {
			return addition{}, errdefs.Invalid("layer %q has content digest %s but the config says %s: the archive is corrupt", l, lf.diffID, cfg.RootFS.DiffIDs[j])
		}
		pins.add(blobKey(lf.digest))
		if isFile(full) {
			created, err := s.adoptBlob(full, lf.digest, false)
			w.add(created, lf.digest)
			if err != nil {
				return addition{}, fmt.Errorf("layer %q: %w", l, err)
			}
		} else if !s.hasBlob(lf.digest, lf.size) {
			return addition{}, errdefs.Invalid("layer %q is missing", l)
		}
		mf.Layers = append(mf.Layers, v1.Descriptor{MediaType: lf.mediaType, Size: lf.size, Digest: lf.digest})
	}
	rawManifest, err := json.Marshal(mf)
	if err != nil {
		return addition{}, fmt.Errorf("encode manifest: %w", err)
	}
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(rawManifest)), Digest: digestBytes(rawManifest)}
	pins.add(blobKey(mf.Config.Digest), blobKey(desc.Digest))
	created, err := s.putBytes(ctx, mf.Config.Digest, rawCfg)
	w.add(created, mf.Config.Digest)
	if err != nil {
		return addition{}, err
	}
	created, err = s.putBytes(ctx, desc.Digest, rawManifest)
	w.add(created, desc.Digest)
	if err != nil {
		return addition{}, err
	}
	return addition{desc: desc, refs: refs}, nil
}

func readFileLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(limitReader(f, maxMetadataSize, errMetadataTooLarge))
}
