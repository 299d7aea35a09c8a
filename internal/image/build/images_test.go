package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api/errdefs"
)

// fakeImages is an in-memory image store.
type fakeImages map[string]v1.Image

func (f fakeImages) Image(_ context.Context, ref string) (v1.Image, error) {
	if img, ok := f[ref]; ok {
		return img, nil
	}
	return nil, errdefs.NotFound("image %q not found", ref)
}

var _ Images = fakeImages(nil)

// tarEntry is a file of a test tar.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     string
	link     string
}

var testTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// makeTar writes entries as an uncompressed tar.
func makeTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: testTime, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageOf builds an image with Docker media types (as pulled images often
// have) from one layer and a config.
func imageOf(t testing.TB, layer []byte, cfg v1.Config, arch string) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: arch, Config: cfg, Created: v1.Time{Time: testTime},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "base layer", Created: v1.Time{Time: testTime}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// baseLayer is the filesystem of the "base" test image.
func baseLayer(t testing.TB) []byte {
	return makeTar(t, []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/sh", mode: 0o755, body: "#!fake shell\n"},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n"},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\nstaff:x:50:\napp:x:1001:\n"},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/lib/", typ: tar.TypeDir, mode: 0o755},
		{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		{name: "srv/", typ: tar.TypeDir, mode: 0o755},
		{name: "srv/www/", typ: tar.TypeDir, mode: 0o750, uid: 33, gid: 33},
		{name: "srv/www/index.html", mode: 0o640, uid: 33, gid: 33, body: "<h1>base</h1>\n"},
		{name: "srv/www/same.html", typ: tar.TypeLink, link: "srv/www/index.html"},
	})
}

// testImages returns the fake store the tests build against.
func testImages(t testing.TB) fakeImages {
	t.Helper()
	base := imageOf(t, baseLayer(t), v1.Config{
		Env:        []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"},
		Cmd:        []string{"/bin/sh"},
		WorkingDir: "/srv",
		Labels:     map[string]string{"from": "base"},
	}, "amd64")
	onbuild := imageOf(t, makeTar(t, []tarEntry{{name: "etc/", typ: tar.TypeDir, mode: 0o755}}), v1.Config{
		OnBuild: []string{"COPY hello.txt /from-trigger.txt", "LABEL trigger=ran"},
	}, "amd64")
	onbuildRun := imageOf(t, makeTar(t, []tarEntry{{name: "etc/", typ: tar.TypeDir, mode: 0o755}}), v1.Config{
		OnBuild: []string{"RUN make"},
	}, "amd64")
	arm := imageOf(t, makeTar(t, []tarEntry{{name: "etc/", typ: tar.TypeDir, mode: 0o755}}), v1.Config{}, "arm64")
	rnd, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return fakeImages{
		"base":               base,
		"localhost/base:1.0": base,
		"onbuild":            onbuild,
		"onbuild-run":        onbuildRun,
		"arm":                arm,
		"random":             rnd,
	}
}

// modeString formats a tar entry's type and mode like ls -l.
func modeString(typ byte, mode int64) string {
	c := map[byte]byte{tar.TypeDir: 'd', tar.TypeSymlink: 'l', tar.TypeChar: 'c', tar.TypeBlock: 'b', tar.TypeFifo: 'p'}[typ]
	if c == 0 {
		c = '-'
	}
	b := []byte{c}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	special := []struct {
		bit int64
		pos int
		ch  byte
	}{{0o4000, 3, 's'}, {0o2000, 6, 's'}, {0o1000, 9, 't'}}
	for _, s := range special {
		if mode&s.bit != 0 {
			if b[s.pos] == 'x' {
				b[s.pos] = s.ch
			} else {
				b[s.pos] = s.ch - 'a' + 'A'
			}
		}
	}
	return string(b)
}

// listLayer describes every entry of a layer: mode, owner, path and, for
// files, the content (short text) or its digest.
func listLayer(t testing.TB, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%s %d:%d /%s", modeString(h.Typeflag, h.Mode), h.Uid, h.Gid, strings.TrimSuffix(h.Name, "/"))
		switch h.Typeflag {
		case tar.TypeSymlink:
			line += " -> " + h.Linkname
		case tar.TypeLink:
			line += " link to " + h.Linkname
		case tar.TypeReg:
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) <= 48 && isText(body) {
				line += fmt.Sprintf(" %q", body)
			} else {
				line += fmt.Sprintf(" %d bytes sha256:%x", len(body), sha256.Sum256(body))
			}
		}
		out = append(out, line)
	}
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' || c > 0x7e {
			return false
		}
	}
	return true
}

// imageTypes checks the media types of a built image are OCI ones.
func imageTypes(t testing.TB, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s config %s, want OCI", m.MediaType, m.Config.MediaType)
	}
	for i, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer %d media type %s, want %s", i, l.MediaType, types.OCILayer)
		}
	}
}
