// Package imagetest builds real OCI images and runs a real registry for
// tests, without network access: images are made from tar entries, random
// bytes or Debian's static busybox, and the registry is Debian's
// docker-registry (distribution 2.8) listening on loopback.
//
// Every image has OCI media types (manifest, config and layers) and a
// config set before its layers were added, so diff IDs are right.
package imagetest

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Created is the creation time given to every image this package builds,
// so the same content always gives the same image ID.
var Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a test layer.
type File struct {
	// Name is the path inside the layer, e.g. "etc/hostname".
	Name string
	// Type is a tar type flag; the zero value means a regular file.
	Type byte
	// Body is a regular file's content.
	Body string
	// Linkname is the target of a symlink or hard link.
	Linkname string
	// Mode is the permission bits; 0 means 0644 (0755 for directories).
	Mode int64
	// UID and GID own the entry.
	UID, GID int
}

// Tar returns an uncompressed tar stream holding files in order.
func Tar(t testing.TB, files ...File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:     f.Name,
			Typeflag: f.Type,
			Linkname: f.Linkname,
			Mode:     f.Mode,
			Uid:      f.UID,
			Gid:      f.GID,
			ModTime:  Created,
			Format:   tar.FormatPAX,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("imagetest: tar header %q: %v", f.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.Body); err != nil {
				t.Fatalf("imagetest: tar body %q: %v", f.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("imagetest: close tar: %v", err)
	}
	return buf.Bytes()
}

// LayerFromTar returns a layer of the uncompressed tar stream b, stored
// with compression c (compression.GZip, compression.ZStd or
// compression.None) and the matching OCI media type.
func LayerFromTar(t testing.TB, c compression.Compression, b []byte) v1.Layer {
	t.Helper()
	if c == compression.None || c == "" {
		return static.NewLayer(b, types.OCIUncompressedLayer)
	}
	mt := types.OCILayer
	if c == compression.ZStd {
		mt = types.OCILayerZStd
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompression(c), tarball.WithMediaType(mt), tarball.WithCompressedCaching)
	if err != nil {
		t.Fatalf("imagetest: layer: %v", err)
	}
	return l
}

// Layer returns a gzip-compressed OCI layer holding files.
func Layer(t testing.TB, files ...File) v1.Layer {
	t.Helper()
	return LayerFromTar(t, compression.GZip, Tar(t, files...))
}

// Image returns an OCI image for linux/GOARCH with config cfg and the
// given layers, bottom first.
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Created:      v1.Time{Time: Created},
		OS:           "linux",
		Architecture: runtime.GOARCH,
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatalf("imagetest: config: %v", err)
	}
	for i, l := range layers {
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   l,
			History: v1.History{Created: v1.Time{Time: Created}, CreatedBy: fmt.Sprintf("imagetest layer %d", i+1)},
		})
		if err != nil {
			t.Fatalf("imagetest: append layer: %v", err)
		}
	}
	if _, err := img.Digest(); err != nil {
		t.Fatalf("imagetest: image: %v", err)
	}
	return img
}

// RandomImage returns an OCI image of n gzip layers, each holding one
// file of 1 KiB of random bytes, so every call gives a new image ID.
func RandomImage(t testing.TB, layers int) v1.Image {
	t.Helper()
	ls := make([]v1.Layer, layers)
	for i := range ls {
		b := make([]byte, 1024)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		ls[i] = Layer(t, File{Name: fmt.Sprintf("random-%d", i), Body: string(b)})
	}
	return Image(t, v1.Config{Cmd: []string{"/random-0"}}, ls...)
}

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

var (
	busyboxOnce sync.Once
	busyboxTar  []byte
	busyboxErr  error
)

// BusyboxTar returns the uncompressed root filesystem of BusyboxImage.
func BusyboxTar(t testing.TB) []byte {
	t.Helper()
	busyboxOnce.Do(func() { busyboxTar, busyboxErr = buildBusyboxTar() })
	if busyboxErr != nil {
		t.Fatalf("imagetest: busybox: %v (is busybox-static installed?)", busyboxErr)
	}
	return busyboxTar
}

// BusyboxImage returns a one-layer OCI image with Debian's static
// busybox at /bin/busybox, a /bin symlink for each of its applets (sh,
// echo, cat, ls, sleep, nc, ...), /etc/passwd and /etc/group with root
// and nobody, /tmp, and Cmd ["sh"].
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	return Image(t, v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, LayerFromTar(t, compression.GZip, BusyboxTar(t)))
}

func buildBusyboxTar() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime = Created
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"proc", 0o555}, {"root", 0o700}, {"sys", 0o555}, {"tmp", 0o1777}, {"usr", 0o755}, {"var", 0o755}} {
		if err := add(&tar.Header{Name: d.name + "/", Typeflag: tar.TypeDir, Mode: d.mode}, nil); err != nil {
			return nil, err
		}
	}
	if err := add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bin); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	files := []struct{ name, body string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
	}
	for _, f := range files {
		if err := add(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644}, []byte(f.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Tagged is an image with the reference it is stored under; an empty Ref
// leaves it untagged.
type Tagged struct {
	Ref   string
	Image v1.Image
}

// WriteOCILayout writes images into a new OCI image layout at dir, each
// index entry annotated with org.opencontainers.image.ref.name = Ref.
func WriteOCILayout(t testing.TB, dir string, images ...Tagged) {
	t.Helper()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("imagetest: layout: %v", err)
	}
	for _, ti := range images {
		var opts []layout.Option
		if ti.Ref != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ti.Ref}))
		}
		if err := lp.AppendImage(ti.Image, opts...); err != nil {
			t.Fatalf("imagetest: layout: append %s: %v", ti.Ref, err)
		}
	}
}

// OCIArchive returns an OCI archive (a tar of an OCI image layout)
// holding images.
func OCIArchive(t testing.TB, images ...Tagged) []byte {
	t.Helper()
	dir := t.TempDir()
	WriteOCILayout(t, dir, images...)
	return TarDir(t, dir)
}

// DockerArchive returns a `docker save` archive (manifest.json with
// RepoTags) holding images; Ref must be a tag reference.
func DockerArchive(t testing.TB, images ...Tagged) []byte {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for _, ti := range images {
		r, err := name.NewTag(ti.Ref)
		if err != nil {
			t.Fatalf("imagetest: docker archive: %v", err)
		}
		refs[r] = ti.Image
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		t.Fatalf("imagetest: docker archive: %v", err)
	}
	return buf.Bytes()
}

// TarDir returns a tar of the files and directories under dir, with
// names relative to dir.
func TarDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatalf("imagetest: tar %s: %v", dir, err)
	}
	return buf.Bytes()
}
