package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestBuildMountCache: a RUN --mount=type=cache directory keeps what one
// build wrote for the next build, lives under <root>/buildcache/mounts,
// and is in neither image.
func TestBuildMountCache(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, "FROM busybox\nRUN --mount=type=cache,target=/var/cache/e2e,id=e2e-cache echo from-first-build > /var/cache/e2e/note\n")
	must(t, d, "image", "build", "-t", "cache-one", dir)
	dir = writeBuildContext(t, "FROM busybox\nRUN --mount=type=cache,target=/cache,id=e2e-cache,sharing=locked cp /cache/note /seen\n")
	must(t, d, "image", "build", "-t", "cache-two", dir)
	defer d.Run("", "image", "rm", "cache-one", "cache-two")
	if out := must(t, d, "run", "--rm", "cache-two", "cat", "/seen"); out != "from-first-build\n" {
		t.Errorf("the second build saw %q in the cache, want the first build's file", out)
	}
	for _, img := range []string{"cache-one", "cache-two"} {
		r := d.Run("", "run", "--rm", img, "sh", "-c", "ls /var/cache/e2e /cache 2>&1; true")
		if strings.Contains(r.Stdout, "note") {
			t.Errorf("image %s holds the cache's file: %s", img, r)
		}
	}
	notes, _ := filepath.Glob(filepath.Join(d.Root, "buildcache", "mounts", "*", "note"))
	if len(notes) != 1 {
		t.Errorf("cache directories holding the note under <root>/buildcache/mounts: %v, want 1", notes)
	}
	buildLeftovers(t, d)
}

// TestBuildSecret: secrets given as a file and as a variable are read by
// RUN steps, yet their values are in no blob of the store (decompressed),
// no history or config, no output line and no line of the daemon's log.
func TestBuildSecret(t *testing.T) {
	d := env.daemon
	fileCanary := "canary-file-7c1d9e0a55b2f3"
	envCanary := "canary-env-0b6f4a2e19d8c7"
	t.Setenv("SKIFF_E2E_SECRET", envCanary)
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte(fileCanary), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeBuildContext(t, `FROM busybox
RUN --mount=type=secret,id=token,required sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha
RUN --mount=type=secret,id=api,env=API_KEY,target=/etc/api-key printf %s "$API_KEY" | sha256sum | cut -d' ' -f1 > /api.sha && sha256sum /etc/api-key | cut -d' ' -f1 >> /api.sha
`)
	r := d.Run("", "image", "build", "-t", "secret-use", "--secret", "id=token,src="+secretFile, "--secret", "id=api,env=SKIFF_E2E_SECRET", dir)
	if r.Code != 0 {
		t.Fatalf("build: %s", r)
	}
	defer d.Run("", "image", "rm", "secret-use")
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	out := must(t, d, "run", "--rm", "secret-use", "cat", "/token.sha", "/api.sha")
	if out != sum(fileCanary)+"\n"+sum(envCanary)+"\n"+sum(envCanary)+"\n" {
		t.Errorf("the steps read secrets with hashes %q, want %s and %s", out, sum(fileCanary), sum(envCanary))
	}
	inspect := must(t, d, "image", "inspect", "secret-use")
	logData, _ := os.ReadFile(d.Log)
	for _, canary := range []string{fileCanary, envCanary} {
		if strings.Contains(r.Stdout+r.Stderr, canary) {
			t.Errorf("the build output holds secret %s", canary)
		}
		if strings.Contains(inspect, canary) {
			t.Errorf("the image's inspect output (config, history) holds secret %s", canary)
		}
		if bytes.Contains(logData, []byte(canary)) {
			t.Errorf("the daemon's log holds secret %s", canary)
		}
	}
	blobs := grepBlobs(t, filepath.Join(d.Root, "images", "blobs"), fileCanary, envCanary)
	if len(blobs) > 0 {
		t.Errorf("blobs holding a secret: %v", blobs)
	}
	// Nor any file of the daemon's root: state, logs, runtime state.
	if left := grepTree(t, d.Root, fileCanary, envCanary); len(left) > 0 {
		t.Errorf("files under the daemon's root hold a secret: %v", left)
	}
	// The check can fail: the same values written into a layer are found.
	dir = writeBuildContext(t, "FROM busybox\nARG LEAK\nRUN echo $LEAK > /leak\n")
	must(t, d, "image", "build", "-t", "secret-leak", "--build-arg", "LEAK="+fileCanary, dir)
	defer d.Run("", "image", "rm", "secret-leak")
	if blobs := grepBlobs(t, filepath.Join(d.Root, "images", "blobs"), fileCanary); len(blobs) == 0 {
		t.Errorf("a value written into a layer was not found in any blob: the blob check cannot fail")
	}
	buildLeftovers(t, d)
}

// grepBlobs returns the blobs under dir whose bytes, decompressed when
// they are gzip or zstd, hold one of needles.
func grepBlobs(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read blob %s: %v", p, err)
			return nil
		}
		switch {
		case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err == nil {
				data, err = io.ReadAll(zr)
			}
			if err != nil {
				t.Errorf("gunzip blob %s: %v", p, err)
			}
		case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			zr, err := zstd.NewReader(bytes.NewReader(data))
			if err == nil {
				data, err = io.ReadAll(zr)
				zr.Close()
			}
			if err != nil {
				t.Errorf("unzstd blob %s: %v", p, err)
			}
		}
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				hits = append(hits, filepath.Base(p))
			}
		}
		return nil
	})
	return hits
}

// grepTree returns the regular files under dir holding one of needles.
func grepTree(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				hits = append(hits, p)
			}
		}
		return nil
	})
	return hits
}

// TestBuildMountBindAndTmpfs: a step reads a file of an earlier stage
// through a bind mount and writes into a tmpfs; neither mount is in the
// image.
func TestBuildMountBindAndTmpfs(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, `FROM busybox AS maker
RUN mkdir /out && echo made-in-stage > /out/artifact
FROM busybox
RUN --mount=type=bind,from=maker,source=/out,target=/mnt/maker --mount=type=tmpfs,target=/work cp /mnt/maker/artifact /work/a && grep -q ' /work tmpfs' /proc/mounts && cat /work/a > /result
RUN --mount=type=bind,target=/ctx cat /ctx/Dockerfile | head -1 > /first-line
`)
	must(t, d, "image", "build", "-t", "bind-tmpfs", dir)
	defer d.Run("", "image", "rm", "bind-tmpfs")
	out := must(t, d, "run", "--rm", "bind-tmpfs", "sh", "-c", "cat /result /first-line; ls -d /mnt/maker /work /ctx 2>&1 || true")
	if !strings.HasPrefix(out, "made-in-stage\nFROM busybox AS maker\n") {
		t.Errorf("the steps read through their mounts: %q", out)
	}
	if strings.Count(out, "No such file or directory") != 3 {
		t.Errorf("mount points are left in the image: %q", out)
	}
	buildLeftovers(t, d)
}

// TestBuildNetwork: RUN steps are on skiff's default network (by address
// and by name) unless the build or the step asks for none; host is
// refused.
func TestBuildNetwork(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "buildweb", "hello")
	defer d.Run("", "rm", "-f", "buildweb")
	ip := inspect(t, d, "buildweb").NetworkSettings.IP
	if ip == "" {
		t.Fatal("the web container has no address")
	}
	url := "http://" + ip + ":8080/"
	dir := writeBuildContext(t, "FROM busybox\nRUN for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /got "+url+" && break; sleep 0.5; done; cat /got\n")
	must(t, d, "image", "build", "-t", "net-default", dir)
	defer d.Run("", "image", "rm", "net-default")
	if out := must(t, d, "run", "--rm", "--network", "none", "net-default", "cat", "/got"); !strings.HasPrefix(out, "hello from skiff (") {
		t.Errorf("a step on the default network got %q from the web container", out)
	}
	// By name, through the network's DNS (busybox's static wget cannot
	// look names up: the hello binary does it).
	dir = writeBuildContext(t, "FROM hello\nRUN [\"/hello\", \"-get\", \"http://buildweb:8080/\"]\n")
	r := d.Run("", "image", "build", "-t", "net-dns", dir)
	if r.Code != 0 || !strings.Contains(r.Stderr, "hello from skiff (") {
		t.Errorf("a step reaching the web container by name: %s", r)
	}
	d.Run("", "image", "rm", "net-dns")

	dir = writeBuildContext(t, "FROM busybox\nRUN wget -q -T 2 -O /got "+url+"\n")
	fails(t, d, []string{"Dockerfile:2:", "exited with code"}, "image", "build", "--network", "none", "-t", "net-none", dir)
	dir = writeBuildContext(t, "FROM busybox\nRUN --network=none wget -q -T 2 -O /got "+url+"\n")
	fails(t, d, []string{"Dockerfile:2:", "exited with code"}, "image", "build", "-t", "net-none", dir)
	fails(t, d, []string{`build network "host" is not supported`}, "image", "build", "--network", "host", "-t", "net-host", dir)
	dir = writeBuildContext(t, "FROM busybox\nRUN --network=host true\n")
	fails(t, d, []string{"Dockerfile:2: RUN --network=host is not supported"}, "image", "build", "-t", "net-host", dir)
	buildLeftovers(t, d)
}

// TestBuildMountErrors: bad mount specs, a missing required secret and
// bad --secret flags fail with messages that name the line or the flag.
func TestBuildMountErrors(t *testing.T) {
	d := env.daemon
	tests := []struct {
		dockerfile string
		args       []string
		want       []string
	}{
		{"FROM busybox\nRUN --mount=type=cahce,target=/c true\n", nil, []string{"Dockerfile:2:", `unsupported mount type "cahce"`}},
		{"FROM busybox\n\nRUN --mount=type=cache true\n", nil, []string{"Dockerfile:3: RUN --mount=type=cache: the mount has no target"}},
		{"FROM busybox\nRUN --mount=type=bind,from=nowhere,target=/x true\n", nil, []string{"Dockerfile:2:", "nowhere", "not in the local store"}},
		{"FROM busybox\nRUN --mount=type=secret,id=tok,required true\n", nil, []string{"Dockerfile:2:", `secret "tok" is required but was not given`, "--secret id=tok,src=FILE"}},
		{"FROM busybox\nRUN true\n", []string{"--secret", "id=tok,src=/nonexistent/file"}, []string{"--secret id=tok,src=/nonexistent/file", "no such file"}},
		{"FROM busybox\nRUN true\n", []string{"--secret", "src=/etc/hostname"}, []string{"the secret has no id"}},
	}
	for _, tc := range tests {
		dir := writeBuildContext(t, tc.dockerfile)
		fails(t, d, tc.want, append(append([]string{"image", "build", "-t", "mount-errors"}, tc.args...), dir)...)
	}
	buildLeftovers(t, d)
}
