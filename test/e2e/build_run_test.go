package e2e

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// buildRunDockerfile exercises RUN over the busybox image: every form,
// the stage's ARG, ENV, WORKDIR and USER, deletions (a whiteout, an
// opaque directory) and a hard link to a file of a lower layer.
const buildRunDockerfile = `FROM busybox
ARG FLAVOUR=plain
ENV GREETING=hello
RUN mkdir -p /data/keep && echo old > /data/keep/a && echo doomed > /victim
RUN rm /victim /etc/group && rm -rf /data && mkdir /data && echo new > /data/b && ln /etc/passwd /etc/passwd.link
RUN ["/bin/sh", "-c", "echo exec > /exec-form"]
USER app
WORKDIR /home/app/work
RUN echo "$GREETING $FLAVOUR $(id -un) $(pwd)" > seen && chmod 0640 seen
USER root
RUN true
RUN <<EOF
echo heredoc > /heredoc
EOF
CMD ["sh"]
`

// writeBuildContext writes a context holding only a Dockerfile.
func writeBuildContext(t *testing.T, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imageLayers reads an image's layers from the daemon's OCI layout.
func imageLayers(t *testing.T, d *Daemon, ref string) []v1.Layer {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(filepath.Join(d.Root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range m.Manifests {
		if desc.Annotations["org.opencontainers.image.ref.name"] != ref {
			continue
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	t.Fatalf("image %s not in the store's index", ref)
	return nil
}

// layerNames lists the entries of a layer tar.
func layerNames(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

func TestBuildRunSteps(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, buildRunDockerfile)
	r := d.Run("", "image", "build", "-t", "run-steps", dir)
	if r.Code != 0 {
		t.Fatalf("build: %s", r)
	}
	for _, want := range []string{"STEP 5/13: RUN rm /victim", "Successfully tagged localhost/run-steps:latest"} {
		if !strings.Contains(r.Stdout+r.Stderr, want) {
			t.Errorf("build output lacks %q: %s", want, r)
		}
	}
	base := imageLayers(t, d, "localhost/busybox:latest")
	layers := imageLayers(t, d, "localhost/run-steps:latest")
	// 4 RUNs with changes, WORKDIR, 1 heredoc RUN: "RUN true" adds none.
	if len(layers) != len(base)+6 {
		t.Fatalf("%d layers, want the base's %d + 6", len(layers), len(base))
	}
	del := layerNames(t, layers[len(base)+1])
	for _, want := range []string{".wh.victim", "etc/.wh.group", "data/.wh..wh..opq", "data/b"} {
		if del[want] == nil {
			t.Errorf("the deleting layer lacks %s", want)
		}
	}
	if h := del["etc/passwd.link"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "etc/passwd" {
		t.Errorf("etc/passwd.link is not a hard link to etc/passwd: %+v", h)
	}
	if h := layerNames(t, layers[len(base)+4])["home/app/work/seen"]; h == nil || h.Uid != 1000 || h.Mode&0o777 != 0o640 {
		t.Errorf("home/app/work/seen: %+v", h)
	}

	out := must(t, d, "run", "--rm", "run-steps", "sh", "-c",
		"cat /home/app/work/seen /exec-form /heredoc /data/b; ls /data; test -e /victim || echo victim-gone; test -e /etc/group || echo group-gone; stat -c %h /etc/passwd")
	want := "hello plain app /home/app/work\nexec\nheredoc\nnew\nb\nvictim-gone\ngroup-gone\n2\n"
	if out != want {
		t.Errorf("the built image holds:\n%s\nwant:\n%s", out, want)
	}
	buildLeftovers(t, d)
}

func TestBuildRunFailure(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, "FROM busybox\nRUN echo fine > /fine\nRUN for i in $(seq 1 30); do echo out$i; done; echo bad >&2; exit 7\nRUN echo never-runs\n")
	r := fails(t, d, []string{"Dockerfile:3:", "exited with code 7", "out30", "bad"}, "image", "build", "-t", "run-fails", dir)
	_, msg, _ := strings.Cut(r.Stderr, "Error:")
	if strings.Contains(msg, "out21\n") || strings.Contains(r.Stdout+r.Stderr, "STEP 4/4") {
		t.Errorf("the error holds more than the last lines, or the build went on: %s", r)
	}
	if r := d.Run("", "image", "inspect", "run-fails"); r.Code == 0 {
		t.Errorf("a failed build left an image")
	}
	buildLeftovers(t, d)
}

// buildLeftovers checks no build container, mount or directory is left.
func buildLeftovers(t *testing.T, d *Daemon) {
	t.Helper()
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(d.Root, "build")) {
		t.Errorf("a build mount is left")
	}
	var left []string
	filepath.WalkDir(d.Root, func(p string, e os.DirEntry, err error) error {
		if err == nil && (strings.HasPrefix(e.Name(), "skiff-build-") || strings.HasPrefix(e.Name(), "run-") && filepath.Base(filepath.Dir(p)) == "build") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("builds left %v", left)
	}
	out, err := exec.Command("runc", "--root", filepath.Join(d.Root, "runtime", "runtime"), "list", "-q").CombinedOutput()
	if err != nil {
		t.Errorf("runc list: %v: %s", err, out)
	} else if strings.Contains(string(out), "skiff-build-") {
		t.Errorf("runc still knows build containers: %s", out)
	}
}
