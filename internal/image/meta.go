package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/units"
)

// imageMeta is what the store knows about one image manifest: parsed once,
// cached by manifest digest.
type imageMeta struct {
	// desc is the image manifest's descriptor; for an index entry it is
	// the child chosen for this host's platform.
	desc     v1.Descriptor
	manifest *v1.Manifest
	config   *v1.ConfigFile
	// id is the config digest.
	id v1.Hash
	// chains are the layer chain IDs, bottom layer first.
	chains []v1.Hash
	// size is the sum of the compressed layer sizes.
	size int64
}

// hostPlatform is the platform images are chosen for: linux/<GOARCH>.
func hostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.imagesDir, "blobs", h.Algorithm, h.Hex)
}

// errNotImage marks content the store keeps but cannot run: an OCI
// artifact, a manifest whose config is not an image config, an index
// without an image for this host's platform, or content addressed by
// another algorithm than sha256 (all pushed through the registry). Lists
// and lookups of images skip it; the registry serves it.
var errNotImage = errors.New("not a runnable image")

// isImageConfig reports whether a manifest's config media type is that of
// an image configuration (OCI or Docker).
func isImageConfig(mt types.MediaType) bool {
	return mt == types.OCIConfigJSON || mt == types.DockerConfigJSON || mt == ""
}

// readBlob reads a metadata blob (manifest, index or config) of at most
// maxMetadataSize bytes.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	if !validDigest(h) {
		return nil, errdefs.Invalid("unsupported digest %q: only sha256 and sha512 are supported", h)
	}
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("blob %s is missing from the image store: pull or import the image again", h)
		}
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read blob %s: %w", h, err))
	}
	defer f.Close()
	b, err := io.ReadAll(limitReader(f, maxMetadataSize, errMetadataTooLarge))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return b, nil
}

// meta returns the parsed manifest and config of an index entry.
func (s *Store) meta(d v1.Descriptor) (*imageMeta, error) {
	s.metaMu.Lock()
	m, ok := s.metas[d.Digest]
	s.metaMu.Unlock()
	if ok {
		return m, nil
	}
	if s.beforeLoadMeta != nil {
		s.beforeLoadMeta(d)
	}
	m, err := s.loadMeta(d)
	if err != nil {
		return nil, err
	}
	s.metaMu.Lock()
	s.metas[d.Digest] = m
	s.metaMu.Unlock()
	return m, nil
}

func (s *Store) loadMeta(d v1.Descriptor) (*imageMeta, error) {
	if d.Digest.Algorithm != "sha256" || (!d.MediaType.IsIndex() && !d.MediaType.IsImage()) {
		return nil, fmt.Errorf("manifest %s of type %q: %w", d.Digest, d.MediaType, errNotImage)
	}
	if d.MediaType.IsIndex() {
		raw, err := s.readBlob(d.Digest)
		if err != nil {
			return nil, err
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, errdefs.Invalid("image index %s: %v", d.Digest, err)
		}
		child, err := selectPlatform(im.Manifests, hostPlatform())
		if err != nil {
			return nil, fmt.Errorf("image index %s: %w: %w", d.Digest, err, errNotImage)
		}
		return s.loadMeta(child)
	}
	raw, err := s.readBlob(d.Digest)
	if err != nil {
		return nil, err
	}
	return parseMeta(d, raw, s.readBlob)
}

// parseMeta parses a manifest and reads its config with readBlob; it
// checks that the two agree.
func parseMeta(d v1.Descriptor, rawManifest []byte, readBlob func(v1.Hash) ([]byte, error)) (*imageMeta, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, errdefs.Invalid("image manifest %s: %v", d.Digest, err)
	}
	if mf.Config.Digest.Hex == "" {
		return nil, errdefs.Invalid("image manifest %s names no config: it is not an image manifest", d.Digest)
	}
	if !isImageConfig(mf.Config.MediaType) {
		return nil, fmt.Errorf("manifest %s has a config of type %q: %w", d.Digest, mf.Config.MediaType, errNotImage)
	}
	rawCfg, err := readBlob(mf.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("image manifest %s: config: %w", d.Digest, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, errdefs.Invalid("image config %s: %v", mf.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(mf.Layers) {
		return nil, errdefs.Invalid("image manifest %s lists %d layers but its config %s lists %d diff_ids",
			d.Digest, len(mf.Layers), mf.Config.Digest, len(cfg.RootFS.DiffIDs))
	}
	m := &imageMeta{desc: d, manifest: mf, config: cfg, id: mf.Config.Digest}
	m.chains = chainIDs(cfg.RootFS.DiffIDs)
	for _, l := range mf.Layers {
		m.size += l.Size
	}
	return m, nil
}

// chainIDs computes the OCI chain IDs of a layer stack: the first is the
// bottom layer's diff ID, each next one is sha256(parent + " " + diffID).
func chainIDs(diffIDs []v1.Hash) []v1.Hash {
	out := make([]v1.Hash, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1].String() + " " + d.String()))
		out[i] = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return out
}

// selectPlatform picks the image manifest for p from an index's entries:
// an exact OS/architecture(/variant) match, else the only image manifest
// when there is just one.
func selectPlatform(descs []v1.Descriptor, p v1.Platform) (v1.Descriptor, error) {
	var images []v1.Descriptor
	var seen []string
	for _, d := range descs {
		if !d.MediaType.IsImage() {
			continue
		}
		images = append(images, d)
		if d.Platform == nil {
			continue
		}
		seen = append(seen, d.Platform.String())
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || d.Platform.Variant == p.Variant) {
			return d, nil
		}
	}
	if len(images) == 1 && images[0].Platform == nil {
		return images[0], nil
	}
	if len(seen) == 0 {
		return v1.Descriptor{}, errdefs.NotFound("no image manifest for platform %s", p.String())
	}
	return v1.Descriptor{}, errdefs.NotFound("no image for platform %s (the index has %s)", p.String(), strings.Join(seen, ", "))
}

// toAPI builds the API view of an image from its metadata and tags.
func toAPI(m *imageMeta, tags []string) api.Image {
	c := m.config.Config
	img := api.Image{
		ID:           m.id.String(),
		Digest:       m.desc.Digest.String(),
		Tags:         tags,
		Created:      m.config.Created.Time,
		Size:         m.size,
		Architecture: m.config.Architecture,
		OS:           m.config.OS,
		Config: api.ImageConfig{
			Entrypoint: c.Entrypoint,
			Cmd:        c.Cmd,
			Env:        c.Env,
			WorkingDir: c.WorkingDir,
			User:       c.User,
			Labels:     c.Labels,
			StopSignal: c.StopSignal,
		},
	}
	if h := c.Healthcheck; h != nil {
		img.Config.Healthcheck = &api.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	if img.Tags == nil {
		img.Tags = []string{}
	}
	for _, d := range m.config.RootFS.DiffIDs {
		img.Layers = append(img.Layers, d.String())
	}
	for p := range c.ExposedPorts {
		img.Config.ExposedPorts = append(img.Config.ExposedPorts, p)
	}
	slices.Sort(img.Config.ExposedPorts)
	return img
}

// errMetadataTooLarge is the error for a manifest, config or index over
// maxMetadataSize.
var errMetadataTooLarge = errdefs.Invalid("metadata file is larger than %s", units.Bytes(maxMetadataSize))
