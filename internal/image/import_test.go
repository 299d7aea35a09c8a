package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
)

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// threeLayerImage has a gzip, a zstd and a plain layer, each adding one
// file, with content that differs per call when salt differs.
func threeLayerImage(t *testing.T, salt string) v1.Image {
	t.Helper()
	return imagetest.Image(t, v1.Config{Cmd: []string{"/bin/true"}, Labels: map[string]string{"salt": salt}},
		imagetest.LayerFromTar(t, compression.GZip, imagetest.Tar(t, imagetest.File{Name: "etc/", Type: tar.TypeDir}, imagetest.File{Name: "etc/gzip", Body: "g" + salt})),
		imagetest.LayerFromTar(t, compression.ZStd, imagetest.Tar(t, imagetest.File{Name: "etc/zstd", Body: "z" + salt})),
		imagetest.LayerFromTar(t, compression.None, imagetest.Tar(t, imagetest.File{Name: "etc/plain", Body: "p" + salt})),
	)
}

// plainDockerArchive writes a docker save archive the old way, by hand:
// <id>/layer.tar uncompressed, the config as <id>.json, and a duplicate
// layer as a symlink, as Docker before 25 did.
func plainDockerArchive(t *testing.T, tag string) ([]byte, v1.Image) {
	t.Helper()
	layerTar := imagetest.Tar(t, imagetest.File{Name: "hello", Body: "old docker"})
	l := imagetest.LayerFromTar(t, compression.None, layerTar)
	img := imagetest.Image(t, v1.Config{Cmd: []string{"/hello"}}, l, l)
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := json.Marshal([]map[string]any{{
		"Config":   "cfg.json",
		"RepoTags": []string{tag},
		"Layers":   []string{"aaa/layer.tar", "bbb/layer.tar"},
	}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	add(&tar.Header{Name: "aaa/", Typeflag: tar.TypeDir}, nil)
	add(&tar.Header{Name: "aaa/layer.tar"}, layerTar)
	add(&tar.Header{Name: "bbb/", Typeflag: tar.TypeDir}, nil)
	add(&tar.Header{Name: "bbb/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../aaa/layer.tar"}, nil)
	add(&tar.Header{Name: "cfg.json"}, raw)
	add(&tar.Header{Name: "manifest.json"}, manifest)
	tw.Close()
	return buf.Bytes(), img
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	// want is one imported image; digest is checked when set (an OCI
	// source keeps its manifest, a docker save archive gets a new one).
	type want struct {
		id     string
		tags   []string
		digest string
	}
	tests := []struct {
		name string
		// make returns the archive (or, for a layout, a directory in dir)
		make func(t *testing.T) (archive []byte, layoutDir string, want []want)
	}{
		{
			name: "OCI archive",
			make: func(t *testing.T) ([]byte, string, []want) {
				img := threeLayerImage(t, "oci")
				return imagetest.OCIArchive(t, imagetest.Tagged{Ref: "localhost/hello:latest", Image: img}), "", []want{{idOf(t, img), []string{"localhost/hello:latest"}, digestOf(t, img)}}
			},
		},
		{
			name: "OCI archive gzip as a whole",
			make: func(t *testing.T) ([]byte, string, []want) {
				img := threeLayerImage(t, "gz")
				return gzipBytes(t, imagetest.OCIArchive(t, imagetest.Tagged{Ref: "example.com/team/app:1", Image: img})), "", []want{{idOf(t, img), []string{"example.com/team/app:1"}, digestOf(t, img)}}
			},
		},
		{
			name: "OCI archive zstd as a whole with two images",
			make: func(t *testing.T) ([]byte, string, []want) {
				a, b := threeLayerImage(t, "z1"), imagetest.RandomImage(t, 2)
				return zstdBytes(t, imagetest.OCIArchive(t,
						imagetest.Tagged{Ref: "hello:2", Image: a},
						imagetest.Tagged{Ref: "latest", Image: b},
					)), "", []want{
						{idOf(t, a), []string{"localhost/hello:2"}, digestOf(t, a)},
						{idOf(t, b), []string{}, digestOf(t, b)},
					}
			},
		},
		{
			name: "OCI layout directory",
			make: func(t *testing.T) ([]byte, string, []want) {
				img := threeLayerImage(t, "dir")
				dir := t.TempDir()
				imagetest.WriteOCILayout(t, dir, imagetest.Tagged{Ref: "localhost/dir:1", Image: img}, imagetest.Tagged{Ref: "localhost/dir:2", Image: img})
				return nil, dir, []want{{idOf(t, img), []string{"localhost/dir:1", "localhost/dir:2"}, digestOf(t, img)}}
			},
		},
		{
			name: "docker save",
			make: func(t *testing.T) ([]byte, string, []want) {
				img := threeLayerImage(t, "docker")
				return imagetest.DockerArchive(t, imagetest.Tagged{Ref: "hello:3", Image: img}), "", []want{{idOf(t, img), []string{"localhost/hello:3"}, ""}}
			},
		},
		{
			name: "docker save gzip as a whole with two images",
			make: func(t *testing.T) ([]byte, string, []want) {
				a, b := imagetest.BusyboxImage(t), imagetest.RandomImage(t, 1)
				return gzipBytes(t, imagetest.DockerArchive(t,
						imagetest.Tagged{Ref: "localhost/busybox:latest", Image: a},
						imagetest.Tagged{Ref: "registry.example.com:5000/r:1", Image: b},
					)), "", []want{
						{idOf(t, a), []string{"localhost/busybox:latest"}, ""},
						{idOf(t, b), []string{"registry.example.com:5000/r:1"}, ""},
					}
			},
		},
		{
			name: "old docker save with plain layers and a symlink",
			make: func(t *testing.T) ([]byte, string, []want) {
				b, img := plainDockerArchive(t, "old:1")
				return b, "", []want{{idOf(t, img), []string{"localhost/old:1"}, ""}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			archive, dir, wants := tt.make(t)
			var got []struct {
				id   string
				tags []string
			}
			if dir != "" {
				imgs, err := s.ImportLayout(ctx, dir)
				if err != nil {
					t.Fatalf("ImportLayout: %v", err)
				}
				for _, im := range imgs {
					got = append(got, struct {
						id   string
						tags []string
					}{im.ID, im.Tags})
				}
			} else {
				imgs, err := s.Import(ctx, bytes.NewReader(archive))
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				for _, im := range imgs {
					got = append(got, struct {
						id   string
						tags []string
					}{im.ID, im.Tags})
				}
			}
			if len(got) != len(wants) {
				t.Fatalf("imported %d images, want %d: %+v", len(got), len(wants), got)
			}
			for _, w := range wants {
				i := slices.IndexFunc(got, func(g struct {
					id   string
					tags []string
				}) bool {
					return g.id == w.id
				})
				if i < 0 {
					t.Fatalf("image %s missing from %+v", w.id, got)
				}
				if !slices.Equal(got[i].tags, w.tags) {
					t.Errorf("image %s tags = %q, want %q", w.id, got[i].tags, w.tags)
				}
				// The image resolves and its layers are unpacked.
				r, err := s.Resolve(ctx, w.id)
				if err != nil {
					t.Fatalf("Resolve %s: %v", w.id, err)
				}
				im, err := s.Inspect(ctx, w.id)
				if err != nil {
					t.Fatal(err)
				}
				if w.digest != "" && im.Digest != w.digest {
					t.Errorf("stored manifest %s, source %s", im.Digest, w.digest)
				}
				if len(r.Layers) != len(im.Layers) {
					t.Errorf("Resolve gave %d layer dirs for %d layers", len(r.Layers), len(im.Layers))
				}
				for _, d := range r.Layers {
					if _, err := os.Stat(d); err != nil {
						t.Error(err)
					}
				}
			}
			checkConsistent(t, root)
			// Nothing is left in the temp dir.
			if ents, _ := os.ReadDir(filepath.Join(root, "images", ".tmp")); len(ents) != 0 {
				t.Errorf("temp dir not empty: %v", ents)
			}
			// All manifests in the store have OCI media types.
			var idx v1.IndexManifest
			json.Unmarshal(indexJSON(t, root), &idx)
			for _, e := range idx.Manifests {
				if e.MediaType != types.OCIManifestSchema1 {
					t.Errorf("entry %s has media type %s", e.Digest, e.MediaType)
				}
				b, _ := os.ReadFile(filepath.Join(root, "images", "blobs", "sha256", e.Digest.Hex))
				var m v1.Manifest
				json.Unmarshal(b, &m)
				if m.Config.MediaType != types.OCIConfigJSON {
					t.Errorf("config media type %s", m.Config.MediaType)
				}
				for _, l := range m.Layers {
					if !strings.HasPrefix(string(l.MediaType), "application/vnd.oci.image.layer.v1.tar") {
						t.Errorf("layer media type %s", l.MediaType)
					}
				}
			}
		})
	}
}

func TestImportLayersContent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	img := threeLayerImage(t, "content")
	if _, err := s.Import(ctx, bytes.NewReader(imagetest.DockerArchive(t, imagetest.Tagged{Ref: "c:1", Image: img}))); err != nil {
		t.Fatal(err)
	}
	r, err := s.Resolve(ctx, "c:1")
	if err != nil {
		t.Fatal(err)
	}
	// Top first: plain, zstd, gzip.
	for i, f := range []string{"etc/plain", "etc/zstd", "etc/gzip"} {
		b, err := os.ReadFile(filepath.Join(r.Layers[i], f))
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if !strings.HasSuffix(string(b), "content") {
			t.Errorf("%s = %q", f, b)
		}
	}
	// The media types follow the layers' compression.
	want := []types.MediaType{types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer}
	sImg, err := s.Image(ctx, "c:1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := sImg.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range m.Layers {
		if l.MediaType != want[i] {
			t.Errorf("layer %d media type %s, want %s", i, l.MediaType, want[i])
		}
	}
}

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func readTar(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, tarEntry{*h, body})
	}
}

func writeTar(t *testing.T, es []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		if h.Typeflag == tar.TypeReg || h.Typeflag == 0 {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// editTar rewrites an archive: edit may change an entry or drop it
// (return false); extra entries are appended.
func editTar(t *testing.T, b []byte, edit func(e *tarEntry) bool, extra ...tarEntry) []byte {
	t.Helper()
	var out []tarEntry
	for _, e := range readTar(t, b) {
		if edit == nil || edit(&e) {
			out = append(out, e)
		}
	}
	return writeTar(t, append(out, extra...))
}

func TestImportBadArchive(t *testing.T) {
	ctx := context.Background()
	img := imagetest.Image(t, v1.Config{}, imagetest.Layer(t, imagetest.File{Name: "f", Body: "bad archive test"}))
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()
	oci := imagetest.OCIArchive(t, imagetest.Tagged{Ref: "localhost/bad:1", Image: img})
	docker := imagetest.DockerArchive(t, imagetest.Tagged{Ref: "bad:1", Image: img})
	isLayerBlob := func(e *tarEntry) bool { return strings.HasSuffix(e.hdr.Name, layerDigest.Hex) }

	tests := []struct {
		name    string
		archive []byte
		parts   []string
	}{
		{name: "empty", archive: nil, parts: []string{"neither index.json", "manifest.json"}},
		{name: "not a tar", archive: bytes.Repeat([]byte("garbage!"), 200), parts: []string{"read archive"}},
		{name: "truncated gzip", archive: gzipBytes(t, oci)[:300], parts: []string{"read archive"}},
		{name: "entry escaping", archive: editTar(t, oci, nil, tarEntry{hdr: tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}, body: []byte("x")}), parts: []string{`"../evil"`, "outside the archive"}},
		{name: "absolute symlink", archive: editTar(t, oci, nil, tarEntry{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}), parts: []string{`"link"`, "absolute"}},
		{name: "symlink escaping", archive: editTar(t, oci, func(e *tarEntry) bool {
			if isLayerBlob(e) {
				e.hdr = tar.Header{Name: e.hdr.Name, Typeflag: tar.TypeSymlink, Linkname: "../../../../../../etc/passwd"}
				e.body = nil
			}
			return true
		}), parts: []string{"outside the archive"}},
		{name: "device entry", archive: editTar(t, oci, nil, tarEntry{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o600}}), parts: []string{`"dev"`, "only files, directories and links"}},
		{name: "missing layer blob", archive: editTar(t, oci, func(e *tarEntry) bool { return !isLayerBlob(e) }), parts: []string{layerDigest.Hex, "missing"}},
		{name: "corrupt layer blob", archive: editTar(t, oci, func(e *tarEntry) bool {
			if isLayerBlob(e) {
				e.body = append([]byte(nil), e.body...)
				e.body[len(e.body)-5] ^= 0xff
			}
			return true
		}), parts: []string{layerDigest.String(), "corrupt"}},
		{name: "index.json not JSON", archive: editTar(t, oci, func(e *tarEntry) bool {
			if e.hdr.Name == "index.json" {
				e.body = []byte("{nope")
			}
			return true
		}), parts: []string{"index.json"}},
		{name: "index lists nothing", archive: editTar(t, oci, func(e *tarEntry) bool {
			if e.hdr.Name == "index.json" {
				e.body = []byte(`{"schemaVersion":2,"manifests":[]}`)
			}
			return true
		}), parts: []string{"no image manifest"}},
		{name: "manifest.json not JSON", archive: editTar(t, docker, func(e *tarEntry) bool {
			if e.hdr.Name == "manifest.json" {
				e.body = []byte("[{")
			}
			return true
		}), parts: []string{"manifest.json"}},
		{name: "docker layer does not match its diff id", archive: editTar(t, docker, func(e *tarEntry) bool {
			if strings.HasSuffix(e.hdr.Name, ".tar.gz") {
				e.body = gzipBytes(t, imagetest.Tar(t, imagetest.File{Name: "other", Body: "x"}))
			}
			return true
		}), parts: []string{"has content digest", "the config says", "corrupt"}},
		{name: "docker layer missing", archive: editTar(t, docker, func(e *tarEntry) bool { return !strings.HasSuffix(e.hdr.Name, ".tar.gz") }), parts: []string{"missing"}},
		{name: "docker bad RepoTag", archive: editTar(t, docker, func(e *tarEntry) bool {
			if e.hdr.Name == "manifest.json" {
				e.body = bytes.Replace(e.body, []byte("bad:1"), []byte("BAD:1"), 1)
			}
			return true
		}), parts: []string{`"BAD:1"`, "lowercase"}},
		{name: "docker config missing", archive: editTar(t, docker, func(e *tarEntry) bool { return !strings.HasPrefix(e.hdr.Name, "sha256:") }), parts: []string{"config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			save(t, s, imagetest.RandomImage(t, 1), "existing")
			before := indexJSON(t, root)
			blobsBefore := blobNames(t, root)
			_, err := s.Import(ctx, bytes.NewReader(tt.archive))
			wantCategory(t, err, errdefs.ErrInvalid, tt.parts...)
			if !bytes.Equal(before, indexJSON(t, root)) {
				t.Error("a failed import changed index.json")
			}
			if got := blobNames(t, root); !slices.Equal(got, blobsBefore) {
				t.Errorf("a failed import left blobs: %v, before %v", got, blobsBefore)
			}
			if ents, _ := os.ReadDir(filepath.Join(root, "images", ".tmp")); len(ents) != 0 {
				t.Errorf("temp dir not empty: %v", ents)
			}
		})
	}
}

func TestImportLayoutNotALayout(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.ImportLayout(context.Background(), t.TempDir())
	wantCategory(t, err, errdefs.ErrInvalid, "no index.json")
}
