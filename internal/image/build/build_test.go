package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"skiff.dev/skiff/api/errdefs"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the builds")

// golden is what a case's golden file records of the built image.
type golden struct {
	Platform string       `json:"platform"`
	Config   goldenConfig `json:"config"`
	// Steps are the history entries the build wrote, with the files of
	// the layer each one added.
	Steps []goldenStep `json:"steps"`
}

type goldenConfig struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	Shell        []string          `json:"shell,omitempty"`
	Healthcheck  *v1.HealthConfig  `json:"healthcheck,omitempty"`
	OnBuild      []string          `json:"onBuild,omitempty"`
	Author       string            `json:"author,omitempty"`
}

type goldenStep struct {
	CreatedBy string   `json:"createdBy"`
	Layer     bool     `json:"layer,omitempty"`
	Files     []string `json:"files,omitempty"`
}

// describe turns a built image into its golden form.
func describe(t *testing.T, img v1.Image) golden {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	g := golden{
		Platform: cfg.OS + "/" + cfg.Architecture,
		Config: goldenConfig{
			Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
			Labels: c.Labels, StopSignal: c.StopSignal, Shell: c.Shell, Healthcheck: c.Healthcheck,
			OnBuild: c.OnBuild, Author: cfg.Author,
			ExposedPorts: slices.Sorted(maps.Keys(c.ExposedPorts)),
			Volumes:      slices.Sorted(maps.Keys(c.Volumes)),
		},
	}
	li := 0
	for _, h := range cfg.History {
		if h.Comment == historyComment {
			st := goldenStep{CreatedBy: h.CreatedBy, Layer: !h.EmptyLayer}
			if !h.EmptyLayer {
				st.Files = listLayer(t, layers[li])
			}
			g.Steps = append(g.Steps, st)
		}
		if !h.EmptyLayer {
			li++
		}
	}
	if li != len(layers) {
		t.Errorf("history names %d layers, the image has %d", li, len(layers))
	}
	return g
}

// copyCase copies testdata/<name> into a temporary directory with
// normalised modes (git keeps only the executable bit, umasks vary).
func copyCase(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if fi.Mode()&0o100 != 0 {
				mode = 0o755
			}
			if err := os.WriteFile(out, data, mode); err != nil {
				return err
			}
			return os.Chmod(out, mode)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// appTar is the archive the add case extracts.
func appTar(t testing.TB) []byte {
	return makeTar(t, []tarEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "app/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
		{name: "app/run.sh", mode: 0o755, uid: 1000, gid: 1000, body: "#!/bin/sh\necho run\n"},
		{name: "app/data/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		{name: "app/data/seed.txt", mode: 0o600, uid: 1000, gid: 1000, body: "seed\n"},
		{name: "app/same.sh", typ: tar.TypeLink, link: "app/run.sh"},
		{name: "app/current", typ: tar.TypeSymlink, mode: 0o777, uid: 1000, gid: 1000, link: "data"},
		{name: "bin/tool", mode: 0o4755, body: "tool\n"},
	})
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

var goldenCases = []struct {
	name     string
	args     map[string]string
	target   string
	platform string
	setup    func(t *testing.T, dir string)
}{
	{name: "scratch-basic"},
	{name: "args-env", args: map[string]string{"VERSION": "2.5", "DIR": "/srv/app"}, platform: "linux/arm64"},
	{name: "multistage"},
	{name: "add", setup: func(t *testing.T, dir string) {
		tarball := appTar(t)
		writeFile(t, filepath.Join(dir, "app.tar.gz"), gzipBytes(t, tarball))
		writeFile(t, filepath.Join(dir, "app.tar"), tarball)
		writeFile(t, filepath.Join(dir, "notes.gz"), gzipBytes(t, []byte("not a tar\n")))
	}},
	{name: "workdir"},
	{name: "chown-chmod"},
	{name: "dockerignore"},
	{name: "wildcard"},
	{name: "metadata"},
	{name: "onbuild"},
	{name: "heredoc", args: map[string]string{"WHO": "skiff"}},
	{name: "symlinks"},
	{name: "random-base"},
	{name: "target", target: "dev"},
	{name: "destinations"},
}

func TestBuildGolden(t *testing.T) {
	images := testImages(t)
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyCase(t, tc.name)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			var progress bytes.Buffer
			img, err := Build(context.Background(), Options{
				ContextDir: dir, BuildArgs: tc.args, Target: tc.target, Platform: tc.platform, Progress: &progress,
			}, images)
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, progress.String())
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("the image is not valid: %v", err)
			}
			imageTypes(t, img)
			got, err := json.MarshalIndent(describe(t, img), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, path, got)
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestBuildGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("image differs from %s (go test -update rewrites it):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestBuildProgress checks the step lines a build prints.
func TestBuildProgress(t *testing.T) {
	dir := copyCase(t, "multistage")
	var progress bytes.Buffer
	if _, err := Build(context.Background(), Options{ContextDir: dir, Progress: &progress}, testImages(t)); err != nil {
		t.Fatal(err)
	}
	out := progress.String()
	for _, want := range []string{
		"[build] STEP 1/3: FROM scratch AS build\n",
		"[build] STEP 2/3: COPY artifact.txt /out/artifact\n",
		"[3] STEP 2/7: COPY --from=build /out/artifact /app/artifact\n",
		"\n--> sha256:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[unused]") {
		t.Errorf("progress shows the stage the target does not need:\n%s", out)
	}
}

// TestBuildUnusedArgWarning checks a --build-arg no ARG declares is reported.
func TestBuildUnusedArgWarning(t *testing.T) {
	dir := copyCase(t, "scratch-basic")
	var progress bytes.Buffer
	_, err := Build(context.Background(), Options{ContextDir: dir, Progress: &progress, BuildArgs: map[string]string{"NOPE": "1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "WARNING: build-args [NOPE] were not consumed") {
		t.Errorf("no warning about NOPE:\n%s", progress.String())
	}
}

// TestBuildDockerfileOption checks -f: a Dockerfile under another name,
// relative to the context, and its own .dockerignore.
func TestBuildDockerfileOption(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), []byte("a\n"))
	writeFile(t, filepath.Join(dir, "b.txt"), []byte("b\n"))
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ".dockerignore"), []byte("b.txt\n"))
	writeFile(t, filepath.Join(dir, "build", "prod.Dockerfile"), []byte("FROM scratch\nCOPY *.txt /\n"))
	writeFile(t, filepath.Join(dir, "build", "prod.Dockerfile.dockerignore"), []byte("a.txt\n"))
	img, err := Build(context.Background(), Options{ContextDir: dir, Dockerfile: "build/prod.Dockerfile"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	got := listLayer(t, layers[0])
	want := []string{`-rw-r--r-- 0:0 /b.txt "b\n"`}
	if !slices.Equal(got, want) {
		t.Errorf("layer = %q, want %q (prod.Dockerfile.dockerignore replaces .dockerignore)", got, want)
	}
}

// TestBuildFromStageKeepsLayers checks a stage built FROM another stage
// shares its layers, and an image from the store keeps its own.
func TestBuildFromStageKeepsLayers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), []byte("a"))
	writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM base AS one\nCOPY a /a\nFROM one\nCOPY a /b\n"))
	images := testImages(t)
	img, err := Build(context.Background(), Options{ContextDir: dir}, images)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	baseLayers, _ := images["base"].Layers()
	if len(layers) != len(baseLayers)+2 {
		t.Fatalf("%d layers, want the base's %d + 2", len(layers), len(baseLayers))
	}
	want, _ := baseLayers[0].DiffID()
	if got, _ := layers[0].DiffID(); got != want {
		t.Errorf("first layer %s, want the base's %s", got, want)
	}
	cfg, _ := img.ConfigFile()
	if cfg.History[0].CreatedBy != "base layer" || !cfg.History[0].Created.Time.Equal(testTime) {
		t.Errorf("base history entry changed: %+v", cfg.History[0])
	}
}

// cancelOn cancels a context when a progress line holds a word.
type cancelOn struct {
	word   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.word) {
		c.cancel()
	}
	return len(p), nil
}

// TestBuildCancel checks a cancelled context stops the build, between
// instructions or inside one, and is returned without a category.
func TestBuildCancel(t *testing.T) {
	for _, word := range []string{"FROM", "COPY", "WORKDIR"} {
		t.Run(word, func(t *testing.T) {
			dir := writeContext(t, "FROM scratch\nCOPY . /src/\nWORKDIR /app\nLABEL a=b\n", map[string]string{"a": "a", "d/b": "b"})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := Build(ctx, Options{ContextDir: dir, Progress: cancelOn{word, cancel}}, nil)
			if !errors.Is(err, context.Canceled) || errdefs.Category(err) != nil {
				t.Fatalf("Build cancelled at %s: %v (category %v), want context.Canceled without a category", word, err, errdefs.Category(err))
			}
		})
	}
}
