package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/image/imagetest"
)

// cacheTestDockerfile makes a layer in steps 2 (WORKDIR), 3 (COPY), 4
// and 6 (RUN); only step 6 comes after the ARG and so sees it.
const cacheTestDockerfile = `FROM busybox
WORKDIR /app
COPY src/ /app/src/
RUN cat /app/src/a > /out
ARG V=1
RUN echo "v=$V" > /v
CMD ["cat", "/out", "/v"]
`

// newCacheDaemon starts a daemon of its own (the tests prune its cache
// and images) holding the busybox image.
func newCacheDaemon(t *testing.T, name string) *Daemon {
	t.Helper()
	d, err := startDaemon(name)
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	t.Cleanup(d.Cleanup)
	dir := filepath.Join(t.TempDir(), "busybox")
	if err := busyboxContext(dir); err != nil {
		t.Fatal(err)
	}
	must(t, d, "image", "build", "-q", "-t", "busybox", dir)
	return d
}

// stepRE and cachedRE match the plain progress lines "#N STEP i/n: ..."
// and "#N CACHED".
var (
	stepRE   = regexp.MustCompile(`^#(\d+) STEP (\d+)/\d+: `)
	cachedRE = regexp.MustCompile(`^#(\d+) CACHED$`)
)

// buildCached builds the context and returns the image ID and the
// numbers of the steps shown CACHED.
func buildCached(t *testing.T, d *Daemon, dir string, args ...string) (string, []string, string) {
	t.Helper()
	r := d.Run("", append(append([]string{"image", "build", "-t", "cachetest"}, args...), dir)...)
	if r.Code != 0 {
		t.Fatalf("build: %s", r)
	}
	var cached []string
	index := map[string]string{} // #N → i of STEP i/n
	for _, l := range strings.Split(r.Stderr, "\n") {
		if m := stepRE.FindStringSubmatch(l); m != nil {
			index[m[1]] = m[2]
		}
		if m := cachedRE.FindStringSubmatch(l); m != nil {
			cached = append(cached, index[m[1]])
		}
	}
	var id string
	if m := regexp.MustCompile(`Image ID: (\w+)`).FindStringSubmatch(r.Stdout); m != nil {
		id = m[1]
	}
	if id == "" {
		t.Fatalf("build printed no image ID: %s", r)
	}
	return id, cached, r.Stderr
}

func wantCached(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: steps shown CACHED = %v, want %v", what, got, want)
	}
}

func buildCacheSize(t *testing.T, d *Daemon) int64 {
	t.Helper()
	var info api.Info
	if err := json.Unmarshal([]byte(must(t, d, "info", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	return info.BuildCacheSize
}

// TestBuildCache: hits and misses through the CLI, --no-cache, the cache
// surviving a restart, and builder prune and image prune emptying it.
func TestBuildCache(t *testing.T) {
	d := newCacheDaemon(t, "buildcache")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(cacheTestDockerfile), 0o644)
	os.WriteFile(filepath.Join(dir, "src", "a"), []byte("first\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "unrelated.txt"), []byte("x\n"), 0o644)

	id1, cached, _ := buildCached(t, d, dir)
	wantCached(t, "first build", cached)
	if n := buildCacheSize(t, d); n <= 0 {
		t.Fatalf("info reports a build cache of %d bytes after a build", n)
	}

	start := time.Now()
	id2, cached, _ := buildCached(t, d, dir)
	t.Logf("no-op rebuild took %s", time.Since(start))
	wantCached(t, "rebuild", cached, "2", "3", "4", "6")
	if id2 != id1 {
		t.Fatalf("the rebuild from the cache made image %s, the first build %s", id2, id1)
	}

	os.WriteFile(filepath.Join(dir, "unrelated.txt"), []byte("changed\n"), 0o644)
	id3, cached, _ := buildCached(t, d, dir)
	wantCached(t, "after changing an unrelated file", cached, "2", "3", "4", "6")
	if id3 != id1 {
		t.Fatalf("an unrelated change made image %s, want %s", id3, id1)
	}

	os.WriteFile(filepath.Join(dir, "src", "a"), []byte("second\n"), 0o644)
	_, cached, _ = buildCached(t, d, dir)
	wantCached(t, "after changing a copied file", cached, "2")
	if out := must(t, d, "run", "--rm", "cachetest"); out != "second\nv=1\n" {
		t.Fatalf("the rebuilt image prints %q, want the changed file", out)
	}

	_, cached, _ = buildCached(t, d, dir, "--build-arg", "V=2")
	wantCached(t, "after changing a build arg", cached, "2", "3", "4")
	if out := must(t, d, "run", "--rm", "cachetest"); out != "second\nv=2\n" {
		t.Fatalf("the image built with V=2 prints %q", out)
	}

	_, cached, _ = buildCached(t, d, dir, "--no-cache")
	wantCached(t, "--no-cache", cached)

	d.Stop()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	_, cached, _ = buildCached(t, d, dir)
	wantCached(t, "after a daemon restart", cached, "2", "3", "4", "6")

	// A cache mount directory counts in the size and goes with the cache.
	mount := filepath.Join(d.Root, "buildcache", "mounts", "m1")
	os.MkdirAll(mount, 0o755)
	os.WriteFile(filepath.Join(mount, "data"), []byte(strings.Repeat("m", 4096)), 0o644)

	out := must(t, d, "builder", "prune")
	if !regexp.MustCompile(`Deleted [1-9]\d* build cache entries and 1 cache mounts`).MatchString(out) || strings.Contains(out, "space: 0B") {
		t.Fatalf("builder prune printed %q, want entries and a mount deleted and space freed", out)
	}
	if _, err := os.Stat(mount); err == nil {
		t.Fatal("builder prune left the cache mount")
	}
	if n := buildCacheSize(t, d); n != 0 {
		t.Fatalf("info reports %d bytes of build cache after builder prune", n)
	}
	if out := must(t, d, "info"); !regexp.MustCompile(`(?m)^Build cache:\s+0B$`).MatchString(out) {
		t.Fatalf("info does not show an empty build cache:\n%s", out)
	}
	_, cached, _ = buildCached(t, d, dir)
	wantCached(t, "after builder prune", cached)

	out = must(t, d, "image", "prune")
	if !regexp.MustCompile(`Deleted [1-9]\d* build cache entries`).MatchString(out) {
		t.Fatalf("image prune printed %q, want build cache entries deleted", out)
	}
	if n := buildCacheSize(t, d); n != 0 {
		t.Fatalf("info reports %d bytes of build cache after image prune", n)
	}
	_, cached, _ = buildCached(t, d, dir)
	wantCached(t, "after image prune", cached)
	if out := must(t, d, "run", "--rm", "cachetest"); out != "second\nv=1\n" {
		t.Fatalf("the image rebuilt after the prunes prints %q", out)
	}
}

// TestBuildCacheNoopSpeed: a rebuild where every step hits takes at most
// 0.3 s through the CLI (median of 5), with a base and RUN steps. On a
// machine too busy for that, it must at least cost no more than a few
// plain API round trips (skiff image inspect) measured alongside.
func TestBuildCacheNoopSpeed(t *testing.T) {
	d := newCacheDaemon(t, "buildcache-speed")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(cacheTestDockerfile), 0o644)
	os.WriteFile(filepath.Join(dir, "src", "a"), []byte("first\n"), 0o644)
	buildCached(t, d, dir)
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	var builds, inspects []time.Duration
	for range 5 {
		start := time.Now()
		must(t, d, "image", "inspect", "busybox")
		inspects = append(inspects, time.Since(start))
		start = time.Now()
		_, cached, _ := buildCached(t, d, dir)
		builds = append(builds, time.Since(start))
		wantCached(t, "rebuild", cached, "2", "3", "4", "6")
	}
	b, i := median(builds), median(inspects)
	t.Logf("no-op rebuild: median %s of %v; image inspect: median %s", b, builds, i)
	if b > 300*time.Millisecond && b > 5*i {
		t.Fatalf("a no-op rebuild takes %s (median of 5), want at most 300ms (or 5 image inspects, %s, on a busy machine)", b, 5*i)
	}
}

// TestBuildPull: --pull takes FROM images from their registry rather
// than the local copy, and says so clearly when it cannot.
func TestBuildPull(t *testing.T) {
	d := newCacheDaemon(t, "buildpull")
	reg := imagetest.StartRegistry(t)
	ref := reg + "/base:latest"

	mk := func(marker string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo "+marker+" > /marker\n"), 0o644)
		return dir
	}
	must(t, d, "image", "build", "-q", "-t", ref, mk("registry"))
	must(t, d, "image", "push", ref)
	must(t, d, "image", "build", "-q", "-t", ref, mk("local"))

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nCMD [\"cat\", \"/marker\"]\n"), 0o644)
	must(t, d, "image", "build", "-q", "-t", "pulltest", dir)
	if out := must(t, d, "run", "--rm", "pulltest"); out != "local\n" {
		t.Fatalf("without --pull the build used %q, want the local image", out)
	}
	must(t, d, "image", "build", "--pull", "-q", "-t", "pulltest", dir)
	if out := must(t, d, "run", "--rm", "pulltest"); out != "registry\n" {
		t.Fatalf("with --pull the build used %q, want the registry's image", out)
	}

	// A registry that does not answer: a clear error, not the local copy.
	gone := "127.0.0.1:1/base:latest"
	must(t, d, "image", "tag", "busybox", gone)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+gone+"\n"), 0o644)
	must(t, d, "image", "build", "-q", "-t", "pulltest", dir)
	fails(t, d, []string{"--pull", `cannot pull image "` + gone + `"`, "build without --pull"}, "image", "build", "--pull", "-t", "pulltest", dir)
}
