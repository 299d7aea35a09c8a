package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
)

// fileIn returns the content of the file name (no leading slash) in the
// image's top-most layer holding it, or fails.
func fileIn(t *testing.T, img v1.Image, name string) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	found, content := false, ""
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == name {
				data, _ := io.ReadAll(tr)
				found, content = true, string(data)
			}
		}
		rc.Close()
	}
	if !found {
		t.Fatalf("%s is not in the image", name)
	}
	return content
}

// entryNames returns every entry name of every layer of img.
func entryNames(t *testing.T, img v1.Image) []string {
	t.Helper()
	var names []string
	for _, hs := range layerEntries(t, img) {
		for _, h := range hs {
			names = append(names, h.Name)
		}
	}
	return names
}

// TestBuildRunCacheMount: a cache directory keeps what a step wrote into
// it for the steps of a later build, and is in no layer; the mount points
// the runtime had to make (and their parents) are in none either.
func TestBuildRunCacheMount(t *testing.T) {
	cache := t.TempDir()
	df1 := busyboxBase + "RUN --mount=type=cache,target=/root/.cache/tool echo first > /root/.cache/tool/f\n"
	img1, out, _, err := runBuildOpts(t, context.Background(), nil, Options{CacheDir: cache}, df1)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	df2 := busyboxBase + "RUN --mount=type=cache,target=/c,id=/root/.cache/tool,sharing=locked cat /c/f > /seen\n"
	img2, out, _, err := runBuildOpts(t, context.Background(), nil, Options{CacheDir: cache}, df2)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if got := fileIn(t, img2, "seen"); got != "first\n" {
		t.Errorf("the second build saw %q in the cache, want %q", got, "first\n")
	}
	for _, img := range []v1.Image{img1, img2} {
		for _, n := range entryNames(t, img) {
			if strings.HasPrefix(n, "root") || strings.HasPrefix(n, "c/") || n == "c" || strings.HasSuffix(n, "/f") {
				t.Errorf("the image holds %s, from the cache mount", n)
			}
		}
	}
	if n := len(layerEntries(t, img1)); n != 2 {
		t.Errorf("the first image has %d layers, want 2 (the cache step changes nothing)", n)
	}
}

// TestBuildRunSecretMount: a secret is read by a step as a file (mode
// 0400) and as a variable, and its value is in no layer, in no part of
// the config (history included) and in no progress line.
func TestBuildRunSecretMount(t *testing.T) {
	canary := "canary-5f1e2d3c4b5a69788796a5b4"
	sum := sha256.Sum256([]byte(canary))
	want := hex.EncodeToString(sum[:])
	df := busyboxBase +
		"RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /file.sha && stat -c %a /run/secrets/tok > /file.mode\n" +
		"RUN --mount=type=secret,id=tok,env=TOK,required printf %s \"$TOK\" | sha256sum | cut -d' ' -f1 > /env.sha\n" +
		"RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo ok > /absent\n"
	img, out, _, err := runBuildOpts(t, context.Background(), nil, Options{Secrets: map[string][]byte{"tok": []byte(canary)}}, df)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(fileIn(t, img, "file.sha")); got != want {
		t.Errorf("the step read the secret file with hash %s, want %s", got, want)
	}
	if got := strings.TrimSpace(fileIn(t, img, "file.mode")); got != "400" {
		t.Errorf("the secret file has mode %s, want 400", got)
	}
	if got := strings.TrimSpace(fileIn(t, img, "env.sha")); got != want {
		t.Errorf("the step read the secret variable with hash %s, want %s", got, want)
	}
	if got := fileIn(t, img, "absent"); got != "ok\n" {
		t.Errorf("an optional secret that was not given: %q", got)
	}
	for _, n := range entryNames(t, img) {
		if strings.HasPrefix(n, "run") {
			t.Errorf("the image holds %s, a secret's mount point", n)
		}
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, _ := l.Uncompressed()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(data, []byte(canary)) {
			t.Errorf("layer %d holds the secret", i+1)
		}
	}
	cfg, _ := img.RawConfigFile()
	if bytes.Contains(cfg, []byte(canary)) {
		t.Errorf("the image config holds the secret: %s", cfg)
	}
	if strings.Contains(out, canary) {
		t.Errorf("the progress output holds the secret:\n%s", out)
	}
	var parsed v1.ConfigFile
	json.Unmarshal(cfg, &parsed)
	if len(parsed.History) == 0 || !strings.Contains(parsed.History[len(parsed.History)-1].CreatedBy, "test ! -e /run/secrets/absent") {
		t.Errorf("history %+v lacks the secret steps", parsed.History)
	}
}

// TestBuildRunBindMount: a step reads the context and an earlier stage
// through bind mounts; an rw mount's writes reach neither the context
// nor the layer; a symlink in the context cannot make a bind mount
// reach the host's files.
func TestBuildRunBindMount(t *testing.T) {
	df := "FROM scratch AS data\nCOPY hello /data/greeting\n" + busyboxBase +
		"RUN --mount=type=bind,from=data,source=/data,target=/m cp /m/greeting /from-stage\n" +
		"RUN --mount=target=/ctx cat /ctx/hello > /from-context\n" +
		"RUN --mount=type=bind,rw,target=/ctx echo scribble > /ctx/hello && echo new > /ctx/new && cat /ctx/hello > /rw\n" +
		"RUN --mount=type=bind,source=hello,target=/one cat /one > /one-file\n"
	img, out, _, err := runBuildOpts(t, context.Background(), nil, Options{}, df, "hello", "hi there\n")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"from-stage": "hi there\n", "from-context": "hi there\n", "rw": "scribble\n", "one-file": "hi there\n"} {
		if got := fileIn(t, img, name); got != want {
			t.Errorf("/%s = %q, want %q", name, got, want)
		}
	}
	for _, n := range entryNames(t, img) {
		if n == "m" || n == "m/" || strings.HasPrefix(n, "ctx") || strings.HasPrefix(n, "one/") || n == "one" {
			t.Errorf("the image holds %s, a bind mount's point", n)
		}
	}

	df = busyboxBase + "RUN --mount=type=bind,source=esc/passwd,target=/p cat /p\n"
	_, out, _, err = runBuildOpts(t, context.Background(), nil, Options{}, df, "esc", "")
	if err == nil {
		t.Fatalf("a bind source through a file that is no directory worked:\n%s", out)
	}
}

// TestBuildRunBindMountSymlink: a symlink in the context pointing
// outside resolves inside the context, as the whole context is the
// mount's root.
func TestBuildRunBindMountSymlink(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "in"), 0o755)
	os.WriteFile(filepath.Join(root, "in", "f"), []byte("x"), 0o644)
	os.Symlink("/etc", filepath.Join(root, "etc-link"))
	os.Symlink("../../..", filepath.Join(root, "up"))
	if _, err := resolveIn(root, "etc-link/passwd"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("etc-link/passwd: %v, want not found (inside the root)", err)
	}
	got, err := resolveIn(root, "up/in/f")
	if err != nil || got != filepath.Join(root, "in", "f") {
		t.Errorf("up/in/f = %q, %v; want %s", got, err, filepath.Join(root, "in", "f"))
	}
	if got, err := resolveIn(root, "/"); err != nil || got != root {
		t.Errorf("/ = %q, %v", got, err)
	}
}

// TestBuildRunTmpfsMount: a tmpfs mount is a tmpfs, and its files are
// in no layer.
func TestBuildRunTmpfsMount(t *testing.T) {
	df := busyboxBase + "RUN --mount=type=tmpfs,target=/scratch,size=1m echo x > /scratch/f && grep ' /scratch tmpfs' /proc/mounts > /mounts\n"
	img, out, _, err := runBuildOpts(t, context.Background(), nil, Options{}, df)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got := fileIn(t, img, "mounts"); !strings.Contains(got, "size=1024k") {
		t.Errorf("the tmpfs is mounted as %q, want size=1024k", got)
	}
	for _, n := range entryNames(t, img) {
		if strings.HasPrefix(n, "scratch") {
			t.Errorf("the image holds %s, from the tmpfs", n)
		}
	}
}

// TestBuildRunNetworkNone: RUN --network=none and a build without
// Networks give a step loopback only.
func TestBuildRunNetworkNone(t *testing.T) {
	df := busyboxBase + "RUN --network=none ls /sys/class/net > /links\nRUN ls /sys/class/net > /links2\n"
	img, out, _, err := runBuildOpts(t, context.Background(), nil, Options{Networks: failingNetworks{}, Network: "none"}, df)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, f := range []string{"links", "links2"} {
		if got := fileIn(t, img, f); got != "lo\n" {
			t.Errorf("/%s: the step saw links %q, want only lo", f, got)
		}
	}
	df = busyboxBase + "RUN true\n"
	_, _, _, err = runBuildOpts(t, context.Background(), nil, Options{Networks: failingNetworks{}}, df)
	if err == nil || !strings.Contains(err.Error(), "attaching the build container to the default network: no bridge today") {
		t.Errorf("a step on the default network whose set-up fails: %v", err)
	}
}

// failingNetworks fails every Setup.
type failingNetworks struct{}

func (failingNetworks) Setup(context.Context, string, string, string) (string, error) {
	return "", errdefs.Unavailable("no bridge today")
}
func (failingNetworks) Teardown(context.Context, string) error { return nil }

// TestBuildRunCacheMountFrom: a cache mount with from= starts as a copy
// of that stage's directory and then keeps what steps add to it; one
// with source= alone mounts a directory inside the cache.
func TestBuildRunCacheMountFrom(t *testing.T) {
	cache := t.TempDir()
	df := "FROM scratch AS seed\nCOPY hello /deps/a\n" + busyboxBase +
		"RUN --mount=type=cache,target=/c,from=seed,source=/deps,uid=7 cat /c/a > /got && stat -c %u /c > /owner && echo more > /c/b\n" +
		"RUN --mount=type=cache,target=/s,id=other,source=sub/dir echo x > /s/f\n"
	img, out, _, err := runBuildOpts(t, context.Background(), nil, Options{CacheDir: cache}, df, "hello", "seeded\n")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got := fileIn(t, img, "got") + fileIn(t, img, "owner"); got != "seeded\n7\n" {
		t.Errorf("the step saw %q in the seeded cache, want the stage's file and uid 7", got)
	}
	df = "FROM scratch AS seed\nCOPY hello /deps/a\n" + busyboxBase +
		"RUN --mount=type=cache,target=/c,from=seed,source=/deps ls /c > /ls\n"
	img, out, _, err = runBuildOpts(t, context.Background(), nil, Options{CacheDir: cache}, df, "hello", "changed\n")
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if got := fileIn(t, img, "ls"); got != "a\nb\n" {
		t.Errorf("the second build saw %q in the cache, want a and b kept from the first", got)
	}
	sum := sha256.Sum256([]byte("other"))
	if _, err := os.Stat(filepath.Join(cache, hex.EncodeToString(sum[:]), "sub", "dir", "f")); err != nil {
		t.Errorf("source= without from= is not a directory inside the cache: %v", err)
	}
}

// TestMkdirIn: a directory is made inside a root whatever symlinks a step
// left there.
func TestMkdirIn(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.Symlink(outside, filepath.Join(root, "link"))
	if _, err := mkdirIn(root, "link/x"); err == nil {
		t.Error("mkdirIn went through a symlink")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Error("a directory was made outside the root")
	}
	got, err := mkdirIn(root, "/a/../b/c")
	if err != nil || got != filepath.Join(root, "b", "c") {
		t.Errorf("mkdirIn(/a/../b/c) = %q, %v", got, err)
	}
}

// TestBuildRunNestedMounts: a mount inside another's target is seen,
// whatever the order of the flags.
func TestBuildRunNestedMounts(t *testing.T) {
	df := busyboxBase + "RUN --mount=type=secret,id=tok,target=/t/inner/tok --mount=type=tmpfs,target=/t cat /t/inner/tok > /got\n"
	img, out, _, err := runBuildOpts(t, context.Background(), nil, Options{Secrets: map[string][]byte{"tok": []byte("nested\n")}}, df)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got := fileIn(t, img, "got"); got != "nested\n" {
		t.Errorf("the step read %q through the nested mount", got)
	}
}
