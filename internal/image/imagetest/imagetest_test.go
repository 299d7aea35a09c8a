package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestBusyboxImage(t *testing.T) {
	img := BusyboxImage(t)
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("manifest %+v", m)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"sh"}) || len(cfg.Config.Entrypoint) != 0 {
		t.Errorf("Cmd %q Entrypoint %q", cfg.Config.Cmd, cfg.Config.Entrypoint)
	}
	ls, _ := img.Layers()
	diffID, _ := ls[0].DiffID()
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != diffID {
		t.Errorf("diff IDs %v, layer %s", cfg.RootFS.DiffIDs, diffID)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	links := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeSymlink {
			links[h.Name] = h.Linkname
		}
		if h.Name == "bin/busybox" && h.Mode&0o111 == 0 {
			t.Error("bin/busybox is not executable")
		}
	}
	for _, a := range []string{"sh", "echo", "cat", "ls", "sleep", "nc"} {
		if links["bin/"+a] != "busybox" {
			t.Errorf("bin/%s -> %q", a, links["bin/"+a])
		}
	}
	// The same content gives the same image.
	if a, b := digest(t, img), digest(t, BusyboxImage(t)); a != b {
		t.Errorf("two busybox images differ: %s %s", a, b)
	}
}

func digest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestStartRegistry(t *testing.T) {
	host := StartRegistry(t)
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ = %s", resp.Status)
	}
}

func TestArchives(t *testing.T) {
	img := RandomImage(t, 2)
	for name, b := range map[string][]byte{
		"oci":    OCIArchive(t, Tagged{Ref: "localhost/x:1", Image: img}),
		"docker": DockerArchive(t, Tagged{Ref: "localhost/x:1", Image: img}),
	} {
		t.Run(name, func(t *testing.T) {
			want := map[string]string{"oci": "index.json", "docker": "manifest.json"}[name]
			tr := tar.NewReader(bytes.NewReader(b))
			found := false
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				found = found || h.Name == want
			}
			if !found {
				t.Errorf("archive lacks %s", want)
			}
		})
	}
}
