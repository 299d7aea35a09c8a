package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime/runc"
)

// runBuild builds a Dockerfile whose context holds busybox (static) as
// "busybox", with RUN steps on a real runc under conmon. It returns the
// image, the progress output and the error.
func runBuild(t *testing.T, dockerfile string, args map[string]string, files ...string) (v1.Image, string, string, error) {
	t.Helper()
	return runBuildCtx(t, context.Background(), nil, dockerfile, args, files...)
}

// runBuildCtx is runBuild with a context and an extra progress writer.
func runBuildCtx(t *testing.T, ctx context.Context, progress io.Writer, dockerfile string, args map[string]string, files ...string) (v1.Image, string, string, error) {
	t.Helper()
	return runBuildOpts(t, ctx, progress, Options{BuildArgs: args}, dockerfile, files...)
}

// runBuildOpts is runBuildCtx with more options: the context, progress,
// runtime and work directory are set here.
func runBuildOpts(t *testing.T, ctx context.Context, progress io.Writer, opts Options, dockerfile string, files ...string) (v1.Image, string, string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("RUN tests need root (they run runc)")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox is needed (apt-get install busybox-static): %v", err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "busybox"), data)
	os.Chmod(filepath.Join(dir, "busybox"), 0o755)
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte(dockerfile))
	for i := 0; i+1 < len(files); i += 2 {
		writeFile(t, filepath.Join(dir, files[i]), []byte(files[i+1]))
	}
	base := t.TempDir()
	rt, err := runc.New(context.Background(), runc.WithStateDir(filepath.Join(base, "state")))
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(base, "work")
	var out bytes.Buffer
	var w io.Writer = &out
	if progress != nil {
		w = io.MultiWriter(&out, progress)
	}
	opts.ContextDir, opts.Progress, opts.Runtime, opts.WorkDir = dir, w, rt, work
	img, err := Build(ctx, opts, nil)
	return img, out.String(), work, err
}

// busyboxBase is a stage with busybox installed under /bin.
const busyboxBase = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"

// layerEntries returns the tar headers of each image layer.
func layerEntries(t *testing.T, img v1.Image) [][]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]*tar.Header
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var hs []*tar.Header
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		rc.Close()
		out = append(out, hs)
	}
	return out
}

func findEntry(hs []*tar.Header, name string) *tar.Header {
	for _, h := range hs {
		if strings.TrimSuffix(h.Name, "/") == name {
			return h
		}
	}
	return nil
}

// TestBuildRun runs shell, exec and heredoc RUNs with ARG, ENV, WORKDIR
// and USER, and checks the layers: whiteouts, an opaque directory, a hard
// link to a file of a lower layer, no layer for an empty change.
func TestBuildRun(t *testing.T) {
	df := busyboxBase + `ARG GREETING=hello
ENV WHO=world
RUN mkdir -p /data/keep /gone && echo one > /data/keep/a && echo x > /data/old && echo y > /gone/f && \
    echo deleted > /victim && mkdir -m 1777 /tmp && mkdir /etc && echo root:x:0:0::/:/bin/sh > /etc/passwd && \
    echo app:x:1234:1234::/:/bin/sh >> /etc/passwd
RUN rm /victim && rm -rf /data && mkdir /data && echo two > /data/b && \
    ln /etc/passwd /etc/passwd.link
RUN ["/bin/sh", "-c", "echo exec-form > /exec"]
WORKDIR /work
USER app
RUN echo "$GREETING $WHO $(id -u) $(pwd)" > /tmp/seen && touch /tmp/owned
USER root
RUN true
RUN echo progress-line; printf no-newline >&2
RUN <<EOF
echo heredoc > /heredoc
EOF
SHELL ["/bin/sh", "-xc"]
RUN echo shell-x >/dev/null
`
	img, out, work, err := runBuild(t, df, nil)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !strings.Contains(out, "+ echo shell-x\n") {
		t.Errorf("RUN did not use the stage's SHELL:\n%s", out)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var empty []string
	for _, h := range cfg.History {
		if strings.HasPrefix(h.CreatedBy, "RUN ") && h.EmptyLayer {
			empty = append(empty, h.CreatedBy)
		}
	}
	if want := []string{"RUN /bin/sh -c true", "RUN /bin/sh -c echo progress-line; printf no-newline >&2", "RUN /bin/sh -xc echo shell-x >/dev/null"}; strings.Join(empty, "|") != strings.Join(want, "|") {
		t.Errorf("RUN steps without a layer in the history: %q, want %q", empty, want)
	}
	if !strings.Contains(out, "\nprogress-line\nno-newline\n") {
		t.Errorf("the step's output is not in the progress:\n%s", out)
	}
	layers := layerEntries(t, img)
	// busybox COPY, install RUN, 3 RUNs, WORKDIR, USER RUN, heredoc RUN;
	// RUN true and RUN echo add none.
	if len(layers) != 8 {
		for i, hs := range layers {
			for _, h := range hs {
				t.Logf("layer %d: %s", i, h.Name)
			}
		}
		t.Fatalf("%d layers, want 8 (an empty RUN adds none)", len(layers))
	}
	del := layers[3]
	if findEntry(del, ".wh.victim") == nil {
		t.Errorf("no whiteout for /victim in the deleting layer")
	}
	if findEntry(del, "data/.wh..wh..opq") == nil {
		t.Errorf("no opaque marker for /data made anew")
	}
	if findEntry(del, "data/b") == nil || findEntry(del, "data/old") != nil {
		t.Errorf("the opaque /data layer should hold b only")
	}
	if h := findEntry(del, "etc/passwd.link"); h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "etc/passwd" {
		t.Errorf("hard link across layers: %+v", h)
	}
	if findEntry(layers[4], "exec") == nil {
		t.Errorf("exec form RUN wrote nothing")
	}
	user := layers[6]
	if h := findEntry(user, "tmp/owned"); h == nil || h.Uid != 1234 {
		t.Errorf("/tmp/owned not owned by USER app (1234): %+v", h)
	}
	for _, h := range user {
		if h.Name == "proc/" || h.Name == "sys/" || h.Name == "dev/" {
			t.Errorf("mount point %s leaked into the layer", h.Name)
		}
	}
	// The WORKDIR, ENV, ARG and USER were in effect.
	tree, err := treeFromLayers(context.Background(), mustLayers(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if got := readTreeFile(t, tree, "/tmp/seen"); got != "hello world 1234 /work\n" {
		t.Errorf("/tmp/seen = %q", got)
	}
	if got := readTreeFile(t, tree, "/heredoc"); got != "heredoc\n" {
		t.Errorf("/heredoc = %q", got)
	}
	if n, _, _ := tree.lookup("/victim", false); n != nil {
		t.Errorf("/victim still in the image")
	}
	if n, _, _ := tree.lookup("/data/keep", false); n != nil {
		t.Errorf("/data/keep survived the opaque /data")
	}
	assertNothingLeft(t, work)
}

// TestBuildRunXattrAcrossLayers sets an xattr on a file of a lower
// layer: the copy-up keeps it in the step's layer.
func TestBuildRunXattrAcrossLayers(t *testing.T) {
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"SCHILY.xattr.user.color": "blue"}})
	tw.Write([]byte("hi\n"))
	tw.Close()
	df := busyboxBase + "ADD f.tar /\nRUN chmod 0640 /f && chown 7:8 /f\n"
	img, out, work, err := runBuild(t, df, nil, "f.tar", archive.String())
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	layers := layerEntries(t, img)
	h := findEntry(layers[len(layers)-1], "f")
	if h == nil || h.Mode&0o7777 != 0o640 || h.Uid != 7 || h.Gid != 8 || h.Size != 3 {
		t.Fatalf("/f in the top layer: %+v", h)
	}
	if h := findEntry(layers[len(layers)-2], "f"); h == nil || h.PAXRecords["SCHILY.xattr.user.color"] != "blue" {
		t.Fatalf("ADD did not keep the xattr, the test cannot check the copy-up: %+v", h)
	}
	if got := h.PAXRecords["SCHILY.xattr.user.color"]; got != "blue" {
		t.Errorf("/f lost its xattr in the RUN layer: %v", h.PAXRecords)
	}
	assertNothingLeft(t, work)
}

// TestBuildRunFails checks a failing RUN stops the build with its exit
// code and last output lines, and leaves no container, mount or layer.
func TestBuildRunFails(t *testing.T) {
	df := busyboxBase + "RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; done; echo oops >&2; exit 3\nRUN echo never\n"
	_, out, work, err := runBuild(t, df, nil)
	if err == nil {
		t.Fatalf("build succeeded:\n%s", out)
	}
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("error category: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"Dockerfile:4:", "exited with code 3", "line12", "oops"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "line2\n") {
		t.Errorf("error holds more than the last lines: %q", msg)
	}
	if strings.Contains(out, "never") {
		t.Errorf("the build went on after the failing step")
	}
	assertNothingLeft(t, work)
}

// TestBuildRunCancel cancels a build while a step runs: the step is
// killed, the context's error returned and nothing left behind.
// The step is cancelled while it runs, and as it starts (its STEP line
// is printed just before its container is made).
func TestBuildRunCancel(t *testing.T) {
	for _, word := range []string{"42-marker", "STEP 4/4"} {
		t.Run(word, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Now()
			_, out, work, err := runBuildCtx(t, ctx, cancelOn{word: word, cancel: cancel}, busyboxBase+"RUN echo $((6*7))-marker; sleep 60\n", nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled\n%s", err, out)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the cancelled build took %s", d)
			}
			assertNothingLeft(t, work)
		})
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	l, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func readTreeFile(t *testing.T, tree *fsTree, p string) string {
	t.Helper()
	n, _, err := tree.lookup(p, true)
	if err != nil || n == nil {
		t.Fatalf("%s not in the image: %v", p, err)
	}
	rc, err := n.data.open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// assertNothingLeft checks a build left no mount, directory or runc
// container behind.
func assertNothingLeft(t *testing.T, work string) {
	t.Helper()
	entries, _ := os.ReadDir(work)
	if len(entries) != 0 {
		t.Errorf("the build left %d entries in its work directory", len(entries))
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), work) {
		t.Errorf("a mount under %s is left", work)
	}
	var left []string
	filepath.WalkDir(filepath.Dir(work), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "skiff-build-") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("build containers left behind: %v", left)
	}
}

// TestPruneMountpoints removes the empty mount points a runtime made, and
// nothing through a symbolic link a step put in their way.
func TestPruneMountpoints(t *testing.T) {
	upper := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(upper, "proc"), 0o755)
	os.MkdirAll(filepath.Join(upper, "dev", "pts"), 0o755)
	os.MkdirAll(filepath.Join(upper, "sys"), 0o755)
	os.WriteFile(filepath.Join(upper, "sys", "kept"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(outside, "shm"), 0o755)
	os.Symlink(outside, filepath.Join(upper, "run"))
	pruneMountpoints(upper, []string{"/proc", "/dev", "/dev/pts", "/sys", "/run/shm"})
	for _, gone := range []string{"proc", "dev"} {
		if _, err := os.Lstat(filepath.Join(upper, gone)); err == nil {
			t.Errorf("/%s is still in the upper directory", gone)
		}
	}
	if _, err := os.Lstat(filepath.Join(upper, "sys", "kept")); err != nil {
		t.Errorf("a mount point the step filled was removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "shm")); err != nil {
		t.Errorf("a directory behind a symbolic link was removed: %v", err)
	}
}

// TestPruneCopiedUp removes the directories overlayfs copied up only to
// hold a mount point, and keeps those a step changed.
func TestPruneCopiedUp(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	for _, d := range []string{"etc", "run", "var/lib", "chmodded", "filled"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
		os.MkdirAll(filepath.Join(upper, d), 0o755)
	}
	os.Chmod(filepath.Join(upper, "chmodded"), 0o700)
	os.WriteFile(filepath.Join(upper, "filled", "new"), []byte("x"), 0o644)
	missing := []string{"/etc/hosts", "/run/secrets", "/run/secrets/tok", "/var/lib/cache", "/chmodded/m", "/filled/m", "/nolower/m"}
	os.MkdirAll(filepath.Join(upper, "nolower"), 0o755)
	pruneCopiedUp(upper, []string{lower}, missing)
	for _, gone := range []string{"etc", "run", "var/lib", "var"} {
		if _, err := os.Lstat(filepath.Join(upper, gone)); err == nil {
			t.Errorf("/%s, copied up only for a mount point, is still in the upper directory", gone)
		}
	}
	for _, kept := range []string{"chmodded", "filled/new", "nolower"} {
		if _, err := os.Lstat(filepath.Join(upper, kept)); err != nil {
			t.Errorf("/%s, a change of the step's, was removed", kept)
		}
	}
}
