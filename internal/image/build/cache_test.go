package build

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"skiff.dev/skiff/api"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"skiff.dev/skiff/internal/runtime/runc"
)

// memCache is an in-memory Cache.
type memCache struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	l      v1.Layer
	newest time.Time
}

func (c *memCache) Lookup(key string) (v1.Layer, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.l, e.newest, ok
}

func (c *memCache) Put(_ context.Context, key string, l v1.Layer, newest time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]memEntry{}
	}
	c.m[key] = memEntry{l, newest}
	return nil
}

var _ Cache = (*memCache)(nil)

// cacheBuilder builds from one context directory (holding busybox) with
// one cache and a real runtime.
type cacheBuilder struct {
	t     *testing.T
	dir   string
	rt    Runtime
	work  string
	cache *memCache
}

// newCacheBuilder writes the context, with every entry's mtime set to
// testTime so that contexts written alike share cache entries, for
// builds with cache (nil: an empty one).
func newCacheBuilder(t *testing.T, cache *memCache, dockerfile string, files ...string) *cacheBuilder {
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
	if cache == nil {
		cache = &memCache{}
	}
	cb := &cacheBuilder{t: t, dir: t.TempDir(), cache: cache}
	writeFile(t, filepath.Join(cb.dir, "busybox"), data)
	os.Chmod(filepath.Join(cb.dir, "busybox"), 0o755)
	writeFile(t, filepath.Join(cb.dir, "Dockerfile"), []byte(dockerfile))
	for i := 0; i+1 < len(files); i += 2 {
		p := filepath.Join(cb.dir, files[i])
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeFile(t, p, []byte(files[i+1]))
	}
	filepath.Walk(cb.dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Chtimes(p, testTime, testTime)
		}
		return err
	})
	base := t.TempDir()
	if cb.rt, err = runc.New(context.Background(), runc.WithStateDir(filepath.Join(base, "state"))); err != nil {
		t.Fatal(err)
	}
	cb.work = filepath.Join(base, "work")
	return cb
}

// build builds and returns the image ID and the steps (the line up to
// its ':') that were CACHED.
func (cb *cacheBuilder) build(args map[string]string, noCache bool) (string, []string) {
	t := cb.t
	t.Helper()
	var out bytes.Buffer
	started := map[int]string{}
	var cached []string
	img, err := Build(context.Background(), Options{
		ContextDir: cb.dir, BuildArgs: args, Progress: &out, Runtime: cb.rt, WorkDir: cb.work,
		Cache: cb.cache, NoCache: noCache,
		Events: func(ev api.BuildEvent) {
			switch {
			case ev.Kind == api.BuildStepStarted:
				started[ev.Step], _, _ = strings.Cut(ev.Line(), ":")
			case ev.Kind == api.BuildStepDone && ev.Cached:
				cached = append(cached, started[ev.Step])
			}
		},
	}, nil)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return id.String(), cached
}

func (cb *cacheBuilder) edit(name, old, new string) {
	p := filepath.Join(cb.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		cb.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		cb.t.Fatalf("%s has no %q", name, old)
	}
	writeFile(cb.t, p, bytes.Replace(b, []byte(old), []byte(new), 1))
}

// cacheDockerfile has every kind of layer-making step; its steps 2, 3,
// 5, 6, 8, 9 and 11 make layers.
const cacheDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG V=1
WORKDIR /app
COPY --exclude=*.tmp src/ /app/src/
ENV E=1
RUN mkdir -m 1777 /tmp && cat /app/src/a > /out
RUN echo "$V $E" > /v
USER 1000
RUN id -u > /tmp/uid
`

func steps(ns ...int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, "STEP "+strconv.Itoa(n)+"/11")
	}
	return out
}

// TestCacheKey changes one thing between two builds and checks which
// steps the second one took from the cache.
func TestCacheKey(t *testing.T) {
	all := steps(2, 3, 5, 6, 8, 9, 11)
	tests := []struct {
		name    string
		change  func(cb *cacheBuilder)
		args    map[string]string
		noCache bool
		want    []string
		sameID  bool
	}{
		{name: "nothing", want: all, sameID: true},
		{name: "an unrelated file", change: func(cb *cacheBuilder) { cb.edit("other.txt", "other", "changed") }, want: all, sameID: true},
		{name: "an excluded file", change: func(cb *cacheBuilder) { cb.edit("src/x.tmp", "tmp", "changed") }, want: all, sameID: true},
		{name: "a copied file", change: func(cb *cacheBuilder) { cb.edit("src/a", "one", "two") }, want: steps(2, 3, 5)},
		{name: "a copied file's mtime", change: func(cb *cacheBuilder) {
			os.Chtimes(filepath.Join(cb.dir, "src", "a"), time.Now(), time.Unix(1e9, 0))
		}, want: steps(2, 3, 5)},
		{name: "a new file under a copied directory", change: func(cb *cacheBuilder) {
			writeFile(cb.t, filepath.Join(cb.dir, "src", "b"), []byte("b"))
		}, want: steps(2, 3, 5)},
		{name: "a build arg", args: map[string]string{"V": "2"}, want: steps(2, 3, 5, 6)},
		{name: "an ENV before RUN", change: func(cb *cacheBuilder) { cb.edit("Dockerfile", "ENV E=1", "ENV E=2") }, want: steps(2, 3, 5, 6)},
		{name: "a RUN command", change: func(cb *cacheBuilder) { cb.edit("Dockerfile", `echo "$V $E"`, `echo "$E $V"`) }, want: steps(2, 3, 5, 6, 8)},
		{name: "the USER", change: func(cb *cacheBuilder) { cb.edit("Dockerfile", "USER 1000", "USER 1001") }, want: steps(2, 3, 5, 6, 8, 9)},
		{name: "the WORKDIR", change: func(cb *cacheBuilder) { cb.edit("Dockerfile", "WORKDIR /app", "WORKDIR /app2") }, want: steps(2, 3)},
		{name: "no cache", noCache: true},
	}
	// Every case starts from the same context in its own directory, so
	// its first build finds everything in the cache the first made; each
	// change is made by one case only.
	files := []string{"src/a", "one", "src/x.tmp", "tmp", "other.txt", "other"}
	cache := &memCache{}
	first, cached := newCacheBuilder(t, cache, cacheDockerfile, files...).build(nil, false)
	if len(cached) != 0 {
		t.Fatalf("the first build found %v in an empty cache", cached)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := newCacheBuilder(t, cache, cacheDockerfile, files...)
			id1, cached := cb.build(nil, false)
			if !slices.Equal(cached, all) || id1 != first {
				t.Fatalf("the same context elsewhere: cached steps %v, image %s; want %v and %s", cached, id1, all, first)
			}
			if tc.change != nil {
				tc.change(cb)
			}
			id2, cached := cb.build(tc.args, tc.noCache)
			if !slices.Equal(cached, tc.want) {
				t.Errorf("cached steps = %v, want %v", cached, tc.want)
			}
			if tc.sameID && id1 != id2 {
				t.Errorf("the rebuild from the cache made image %s, the first build %s", id2, id1)
			}
		})
	}
}

// TestCacheKeyCopyFrom: COPY --from counts the source stage by its
// content: a change in it misses, an unrelated change hits.
func TestCacheKeyCopyFrom(t *testing.T) {
	df := `FROM scratch AS src
COPY a /a
FROM scratch
COPY b /b
COPY --from=src /a /from-a
`
	cb := newCacheBuilder(t, nil, df, "a", "one", "b", "bee", "c", "sea")
	cb.build(nil, false)
	_, cached := cb.build(nil, false)
	if want := []string{"[src] STEP 2/2", "[1] STEP 2/3", "[1] STEP 3/3"}; !slices.Equal(cached, want) {
		t.Fatalf("rebuild: cached steps = %v, want %v", cached, want)
	}
	cb.edit("c", "sea", "changed")
	if _, cached = cb.build(nil, false); len(cached) != 3 {
		t.Fatalf("after an unrelated change: cached steps = %v, want all 3", cached)
	}
	cb.edit("a", "one", "two")
	_, cached = cb.build(nil, false)
	if want := []string{"[1] STEP 2/3"}; !slices.Equal(cached, want) {
		t.Fatalf("after changing the source stage's file: cached steps = %v, want %v", cached, want)
	}
}

// TestRunKeyMounts: a RUN's key covers its mounts' spec and, for a bind
// mount of the context, the files under its source, not the others; a
// secret's value is not read.
func TestRunKeyMounts(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "mod"), 0o755)
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"))
	writeFile(t, filepath.Join(dir, "mod", "go.mod"), []byte("module a"))
	writeFile(t, filepath.Join(dir, "other"), []byte("x"))
	network := ""
	key := func(line string) string {
		t.Helper()
		cx, err := openContext(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := parser.Parse(strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		c, err := instructions.ParseCommand(res.AST.Children[0])
		if err != nil {
			t.Fatal(err)
		}
		run := c.(*instructions.RunCommand)
		// As dispatch does: mounts are parsed when the words are expanded.
		if err := run.Expand(func(w string) (string, error) { return w, nil }); err != nil {
			t.Fatal(err)
		}
		b := &builder{opts: Options{Cache: &memCache{}, Network: network}, cx: cx, sources: map[string]*imageSource{}}
		s := &stage{def: &stageDef{}, cfg: &v1.ConfigFile{}, args: &kv{}, platform: hostPlatform()}
		k, err := b.runKey(context.Background(), s, run, run.CmdLine)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	bind := "RUN --mount=type=bind,source=mod,target=/src go build\n"
	k1 := key(bind)
	writeFile(t, filepath.Join(dir, "other"), []byte("changed"))
	if key(bind) != k1 {
		t.Fatal("changing a file outside the bind mount's source changed the key")
	}
	writeFile(t, filepath.Join(dir, "mod", "go.mod"), []byte("module b"))
	if key(bind) == k1 {
		t.Fatal("changing a file under the bind mount's source kept the key")
	}
	if key("RUN --mount=type=cache,target=/root/.cache go build\n") == key("RUN --mount=type=cache,target=/tmp/cache go build\n") {
		t.Fatal("cache mounts at different targets have the same key")
	}
	if key("RUN --network=none go build\n") == key("RUN --network=default go build\n") {
		t.Fatal("the network mode is not in the key")
	}
	network = "none" // skiff image build --network none
	if key("RUN go build\n") != key("RUN --network=none go build\n") {
		t.Fatal("the build's --network none is not the step's network in the key")
	}
	network = ""
	if key("RUN go build\n") == key("RUN --network=none go build\n") {
		t.Fatal("a step on the default network has the key of one without")
	}
	secret := "RUN --mount=type=secret,id=token,target=/run/secrets/token go build\n"
	if key(secret) != key(secret) || key(secret) == key("RUN --mount=type=secret,id=other,target=/run/secrets/token go build\n") {
		t.Fatal("a secret mount's key does not follow its id")
	}
}
