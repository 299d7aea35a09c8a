package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func listImages(t *testing.T, d *Daemon) []api.Image {
	t.Helper()
	var imgs []api.Image
	if err := json.Unmarshal([]byte(must(t, d, "image", "ls", "-o", "json")), &imgs); err != nil {
		t.Fatal(err)
	}
	return imgs
}

func hasTag(imgs []api.Image, tag string) bool {
	for _, img := range imgs {
		for _, t := range img.Tags {
			if t == tag {
				return true
			}
		}
	}
	return false
}

// TestImageStoreIsOCILayout proves other tools read the store.
func TestImageStoreIsOCILayout(t *testing.T) {
	layout := filepath.Join(env.daemon.Root, "images")
	out, err := exec.Command("skopeo", "inspect", "oci:"+layout+":localhost/hello:latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var info struct {
		Layers []string
		Env    []string
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info.Layers) == 0 {
		t.Fatalf("skopeo output: %v\n%s", err, out)
	}
	if out, err := exec.Command("umoci", "ls", "--layout", layout).CombinedOutput(); err != nil || !strings.Contains(string(out), "localhost/hello:latest") {
		t.Fatalf("umoci ls: %v\n%s", err, out)
	}
}

func TestImageImportFormats(t *testing.T) {
	d := env.daemon
	layout := filepath.Join(d.Root, "images")
	dir := t.TempDir()
	tests := []struct {
		name, dest, path, tag string
	}{
		{"oci archive", "oci-archive:" + dir + "/oci.tar:localhost/imported-oci:1", dir + "/oci.tar", "localhost/imported-oci:1"},
		{"docker save", "docker-archive:" + dir + "/docker.tar:localhost/imported-docker:1", dir + "/docker.tar", "localhost/imported-docker:1"},
		{"oci layout dir", "oci:" + dir + "/layout:localhost/imported-dir:1", dir + "/layout", "localhost/imported-dir:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := exec.Command("skopeo", "copy", "oci:"+layout+":localhost/hello:latest", tc.dest).CombinedOutput(); err != nil {
				t.Fatalf("skopeo copy: %v\n%s", err, out)
			}
			out := must(t, d, "image", "import", tc.path)
			if !strings.Contains(out, tc.tag) {
				t.Fatalf("import output: %s", out)
			}
			if !hasTag(listImages(t, d), tc.tag) {
				t.Fatalf("%s not listed after import", tc.tag)
			}
			if r := d.Run("", "run", "--rm", tc.tag, "-print", "imported"); r.Code != 0 || r.Stdout != "imported\n" {
				t.Fatalf("run imported image: %s", r)
			}
			must(t, d, "image", "rm", tc.tag)
		})
	}
	// Garbage is refused and changes nothing.
	before, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("this is not a tar archive"), 0o644)
	fails(t, d, nil, "image", "import", junk)
	fails(t, d, []string{"no such file"}, "image", "import", filepath.Join(dir, "missing.tar"))
	after, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	if !bytes.Equal(before, after) {
		t.Fatalf("a refused import changed index.json")
	}
}

func TestImageTagInspectRemove(t *testing.T) {
	d := env.daemon
	must(t, d, "image", "tag", "hello", "hello:v2")
	imgs := listImages(t, d)
	if !hasTag(imgs, "localhost/hello:v2") {
		t.Fatalf("tag not listed")
	}
	var ins []api.Image
	json.Unmarshal([]byte(must(t, d, "image", "inspect", "hello:v2")), &ins)
	if len(ins) != 1 || len(ins[0].Config.Entrypoint) == 0 || ins[0].Config.Entrypoint[0] != "/hello" {
		t.Fatalf("inspect: %+v", ins)
	}
	if out := must(t, d, "image", "ls"); !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "v2") {
		t.Fatalf("image ls:\n%s", out)
	}
	// Untagging one name keeps the image for the other.
	out := must(t, d, "image", "rm", "hello:v2")
	if !strings.Contains(out, "Untagged: localhost/hello:v2") || strings.Contains(out, "Deleted") {
		t.Fatalf("rm of one of two tags: %s", out)
	}
	fails(t, d, []string{"not found"}, "image", "rm", "hello:v2")
	fails(t, d, []string{"not found", "image build"}, "run", "--rm", "no-such-image")
	fails(t, d, []string{"invalid"}, "image", "tag", "hello", "UPPER/Case::bad")
}

func TestImageInUseAndPrune(t *testing.T) {
	d := env.daemon
	must(t, d, "image", "tag", "busybox", "inuse:1")
	must(t, d, "create", "--name", "user-of-inuse", "inuse:1", "true")
	var imgs []api.Image
	if err := json.Unmarshal([]byte(must(t, d, "image", "inspect", "inuse:1", "-o", "json")), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("image inspect: %v %+v", err, imgs)
	}
	img := imgs[0]
	manifest := filepath.Join(d.Root, "images", "blobs", strings.Replace(img.Digest, ":", "/", 1))
	if _, err := os.Stat(manifest); err != nil {
		t.Fatalf("the image's manifest is not where the layout keeps it: %v", err)
	}
	// busybox still names the same image, so untagging inuse:1 is fine; make
	// a private copy so the image has one tag only.
	must(t, d, "image", "rm", "busybox")
	fails(t, d, []string{"user-of-inuse"}, "image", "rm", "inuse:1")
	must(t, d, "image", "rm", "-f", "inuse:1")
	res := must(t, d, "image", "prune")
	if !strings.Contains(res, "Total reclaimed space") {
		t.Fatalf("prune: %s", res)
	}
	if _, err := os.Stat(manifest); err != nil {
		t.Fatalf("prune removed the manifest of an image a container uses: %v\n%s", err, res)
	}
	// The container still has its image and runs.
	if r := d.Run("", "start", "-a", "user-of-inuse"); r.Code != 0 {
		t.Fatalf("container lost its image to prune: %s", r)
	}
	must(t, d, "rm", "user-of-inuse")
	// Now nothing uses it: prune frees it.
	out := must(t, d, "image", "prune")
	if strings.Contains(out, "Deleted 0 blobs") {
		t.Fatalf("prune freed nothing after the last user left: %s", out)
	}
	if _, err := os.Stat(manifest); !os.IsNotExist(err) {
		t.Fatalf("the manifest of an image nothing uses is still there after prune (%v):\n%s", err, out)
	}
	// Restore busybox for the other tests.
	if err := buildSubset(d, "busybox"); err != nil {
		t.Fatal(err)
	}
	if r := d.Run("", "run", "--rm", "busybox", "true"); r.Code != 0 {
		t.Fatal(r)
	}
}

// startRegistry runs Debian's docker-registry on a free loopback port.
func startRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", dir, addr)
	cfgPath := filepath.Join(dir, "config.yml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, 10*time.Second, "registry to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

func TestPushPull(t *testing.T) {
	d := env.daemon
	reg := startRegistry(t)
	ref := reg + "/team/hello:1.0"
	must(t, d, "image", "tag", "hello", ref)
	must(t, d, "image", "push", ref)
	var before []api.Image
	json.Unmarshal([]byte(must(t, d, "image", "inspect", ref)), &before)

	// A second daemon pulls it and runs it.
	d2, err := startDaemon("puller")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d2)
	defer d2.Cleanup()
	out := must(t, d2, "image", "pull", ref)
	if !strings.Contains(out, before[0].Digest) {
		t.Fatalf("pulled digest differs: %s vs %s", out, before[0].Digest)
	}
	if r := d2.Run("", "run", "--rm", ref, "-print", "pulled"); r.Code != 0 || r.Stdout != "pulled\n" {
		t.Fatalf("run pulled image: %s", r)
	}
	// run pulls a missing image whose name has a registry.
	ref2 := reg + "/team/hello:auto"
	must(t, d, "image", "tag", "hello", ref2)
	must(t, d, "image", "push", ref2)
	if r := d2.Run("", "run", "--rm", ref2, "-print", "auto"); r.Code != 0 || !strings.Contains(r.Stdout, "auto") {
		t.Fatalf("run with implicit pull: %s", r)
	}
	fails(t, d2, []string{"no such image"}, "image", "pull", reg+"/team/nothing:here")
	must(t, d, "image", "rm", ref, ref2)
}

// TestMaliciousLayerRefused imports an image whose layer tries to write
// outside the root and checks the run fails naming the entry and leaves
// nothing behind.
func TestMaliciousLayerRefused(t *testing.T) {
	d := env.daemon
	tests := []struct {
		name  string
		entry func(tw *tar.Writer)
		want  string
	}{
		{"dot-dot", func(tw *tar.Writer) { writeFile(tw, "../../escaped", "x") }, "../../escaped"},
		{"symlink then write through", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/tmp", Mode: 0o777})
			writeFile(tw, "link/owned", "x")
		}, "link/owned"},
		{"hardlink out", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../../../etc/passwd"})
		}, "hl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var layer bytes.Buffer
			tw := tar.NewWriter(&layer)
			writeFile(tw, "bin/ok", "fine")
			tc.entry(tw)
			tw.Close()
			name := "localhost/evil-" + strings.ReplaceAll(tc.name, " ", "-") + ":1"
			archive := ociArchive(t, dir, name, layer.Bytes())
			layersBefore := countDir(t, filepath.Join(d.Root, "layers"))
			if r := d.Run("", "image", "import", archive); r.Code == 0 {
				// Import may defer unpacking; running must then refuse.
				r = d.Run("", "run", "--rm", name, "/bin/ok")
				if r.Code == 0 {
					t.Fatalf("malicious image ran: %s", r)
				}
				if !strings.Contains(r.Stderr, tc.want) {
					t.Fatalf("error does not name the entry %q: %s", tc.want, r)
				}
				d.Run("", "image", "rm", name)
			} else if !strings.Contains(r.Stderr, tc.want) {
				t.Fatalf("import error does not name the entry %q: %s", tc.want, r)
			}
			if n := countDir(t, filepath.Join(d.Root, "layers")); n != layersBefore {
				t.Fatalf("layers dir has %d entries, had %d: something half-unpacked was left", n, layersBefore)
			}
			for _, p := range []string{"/tmp/owned", filepath.Join(d.Root, "escaped"), filepath.Join(d.Root, "layers", "escaped")} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s was written outside the layer", p)
				}
			}
		})
	}
}

func writeFile(tw *tar.Writer, name, content string) {
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(content))})
	tw.Write([]byte(content))
}

func countDir(t *testing.T, dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}
