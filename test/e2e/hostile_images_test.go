package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// runWithin runs the CLI against d and gives up after limit, so a daemon
// that hangs fails the test instead of stalling it.
func runWithin(d *Daemon, limit time.Duration, args ...string) (Result, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, env.skiff, append([]string{"--socket", d.Socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		r.Code = -1
	}
	if ctx.Err() != nil {
		r.Code = -1
		r.Stderr += "\n(no answer within " + limit.String() + ")"
	}
	return r, time.Since(start)
}

// alongside runs the hostile command together with ordinary ones and
// requires every one to finish within limit; it returns the hostile
// command's result.
func alongside(t *testing.T, d *Daemon, limit time.Duration, hostile []string, ordinary ...[]string) Result {
	t.Helper()
	var wg sync.WaitGroup
	var hostileRes Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		hostileRes, _ = runWithin(d, limit, hostile...)
	}()
	time.Sleep(200 * time.Millisecond)
	results := make([]Result, len(ordinary))
	for i, args := range ordinary {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = runWithin(d, limit, args...)
		}()
	}
	wg.Wait()
	for i, args := range ordinary {
		if results[i].Code != 0 {
			t.Errorf("skiff %s beside a hostile container: %s", strings.Join(args, " "), results[i])
		}
	}
	return hostileRes
}

// noInternals fails the test if an error message shows the daemon's state
// directory (which holds container and layer IDs).
func noInternals(t *testing.T, d *Daemon, r Result) {
	t.Helper()
	if strings.Contains(r.Stderr, d.Root) || strings.Contains(r.Stderr, "/rootfs") {
		t.Errorf("the error shows internal paths: %s", r.Stderr)
	}
}

// TestHostileImageFIFOPasswd: an image whose /etc/passwd is a FIFO fails
// to run at once with an error naming the file, and neither stalls other
// runs nor image pruning (it used to hang its create with the image lock
// held, then prune, then every create).
func TestHostileImageFIFOPasswd(t *testing.T) {
	d := env.daemon
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeFifo, Mode: 0o644})
	writeFile(tw, "bin/ok", "never run")
	tw.Close()
	name := "localhost/fifo-passwd:1"
	must(t, d, "image", "import", ociArchive(t, t.TempDir(), name, layer.Bytes()))
	defer d.Run("", "image", "rm", name)

	r := alongside(t, d, 30*time.Second, []string{"run", "--rm", name},
		[]string{"run", "--rm", "busybox", "true"},
		[]string{"image", "prune"},
		[]string{"run", "--rm", "busybox", "echo", "still-running"})
	if r.Code == 0 {
		t.Fatalf("an image with a FIFO /etc/passwd ran: %s", r)
	}
	if !strings.Contains(r.Stderr, "/etc/passwd is a named pipe (FIFO), not a regular file") {
		t.Fatalf("the error does not say what is wrong: %s", r)
	}
	noInternals(t, d, r)
	// Nothing of the failed container is left.
	if out := must(t, d, "ps", "-a"); strings.Contains(out, "fifo-passwd") {
		t.Fatalf("a container of the refused image is left: %s", out)
	}
}

// TestHostileContainerFIFOPasswd: exec -u NAME against a container that
// made its own /etc/passwd a FIFO fails at once and stalls nothing.
func TestHostileContainerFIFOPasswd(t *testing.T) {
	d := env.daemon
	must(t, d, "run", "-d", "--name", "fifo-maker", "busybox", "sleep", "300")
	defer d.Run("", "rm", "-f", "fifo-maker")
	must(t, d, "exec", "fifo-maker", "sh", "-c", "rm /etc/passwd && mkfifo /etc/passwd")
	must(t, d, "run", "-d", "--name", "fifo-bystander", "busybox", "sleep", "300")
	defer d.Run("", "rm", "-f", "fifo-bystander")

	// (runc itself reads the container's /etc/passwd when it starts a
	// process there, so any exec into fifo-maker is that container's own
	// trouble; the daemon and other containers must not notice.)
	r := alongside(t, d, 30*time.Second, []string{"exec", "-u", "app", "fifo-maker", "id"},
		[]string{"exec", "-u", "app", "fifo-bystander", "true"},
		[]string{"run", "--rm", "busybox", "true"},
		[]string{"image", "prune"})
	if r.Code == 0 {
		t.Fatalf("exec -u resolved a user through a FIFO: %s", r)
	}
	if !strings.Contains(r.Stderr, "/etc/passwd is a named pipe (FIFO), not a regular file") {
		t.Fatalf("the error does not say what is wrong: %s", r)
	}
	noInternals(t, d, r)
}

// postBuild sends a hand-made build context (as any API client may) and
// returns the build's error message, or "" when it succeeded.
func postBuild(t *testing.T, d *Daemon, tag string, contextTar []byte) string {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
		}}}
	resp, err := c.Post("http://skiff/v1/images/build?t="+tag, "application/x-tar", bytes.NewReader(contextTar))
	if err != nil {
		t.Fatalf("build: %v (a build that blocks on its context times out here)", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var line struct {
			Error  *api.Error
			Result *api.ImageBuildResponse
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Error != nil {
			return line.Error.Message
		}
		if line.Result != nil {
			return ""
		}
	}
	t.Fatalf("build answered %d: %s", resp.StatusCode, out)
	return ""
}

// TestHostileBuildContext: a build context uploaded through the API
// cannot make the daemon read its own files through symlinks, nor block
// it with a FIFO.
func TestHostileBuildContext(t *testing.T) {
	d := env.daemon
	const canary = "CANARY-HOST-SECRET-" + "e2e"
	secret := filepath.Join(t.TempDir(), "shadow")
	// Read as ignore rules, the second line would exclude "keep".
	if err := os.WriteFile(secret, []byte(canary+"\nkeep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		entries func(tw *tar.Writer)
		want    string
	}{
		{"Dockerfile links to a host file", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "Dockerfile", Typeflag: tar.TypeSymlink, Linkname: secret})
		}, `no Dockerfile "Dockerfile" in the build context`},
		{"Dockerfile is a FIFO", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "Dockerfile", Typeflag: tar.TypeFifo, Mode: 0o644})
		}, "Dockerfile is a named pipe (FIFO), not a regular file"},
		{".dockerignore links to a host file", func(tw *tar.Writer) {
			writeFile(tw, "Dockerfile", "FROM scratch\nCOPY keep /keep\n")
			writeFile(tw, "keep", "kept")
			tw.WriteHeader(&tar.Header{Name: ".dockerignore", Typeflag: tar.TypeSymlink, Linkname: secret})
		}, ""},
		{"COPY of a link to a host file", func(tw *tar.Writer) {
			writeFile(tw, "Dockerfile", "FROM scratch\nCOPY shadow /shadow\n")
			tw.WriteHeader(&tar.Header{Name: "shadow", Typeflag: tar.TypeSymlink, Linkname: secret})
		}, `"shadow" is a symlink to`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tc.entries(tw)
			tw.Close()
			tag := fmt.Sprintf("localhost/hostile-context:%d", i)
			msg := postBuild(t, d, tag, buf.Bytes())
			defer d.Run("", "image", "rm", tag)
			if strings.Contains(msg, canary) {
				t.Fatalf("the build shows a host file: %s", msg)
			}
			if strings.Contains(msg, "skiff-build-") || strings.Contains(msg, "/tmp/") && !strings.Contains(msg, secret) {
				t.Errorf("the error shows the daemon's temporary directory: %s", msg)
			}
			if tc.want == "" {
				if msg != "" {
					t.Fatalf("the build failed: %s", msg)
				}
				return
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want it to say %q", msg, tc.want)
			}
		})
	}
}

// TestMaxImageSize: skiff daemon --max-image-size bounds what an import or
// a build brings in, with an error that names the limit and the flag.
func TestMaxImageSize(t *testing.T) {
	d, err := startDaemonWith("small", "--max-image-size", "1m")
	extraDaemons = append(extraDaemons, d)
	if err != nil {
		t.Fatal(err)
	}
	const limit = "limit of 1 MiB: raise it with skiff daemon --max-image-size"
	noise := make([]byte, 2<<20)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>8)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	writeFile(tw, "bin/ok", string(noise))
	tw.Close()
	r := fails(t, d, []string{"exceeds the", limit}, "image", "import", ociArchive(t, t.TempDir(), "localhost/big:1", layer.Bytes()))
	noInternals(t, d, r)

	layer.Reset()
	tw = tar.NewWriter(&layer)
	writeFile(tw, "bin/ok", "small")
	tw.Close()
	must(t, d, "image", "import", ociArchive(t, t.TempDir(), "localhost/small:1", layer.Bytes()))

	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY big /big\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "big"), noise, 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, d, []string{"the build context exceeds the upload " + limit}, "image", "build", "-t", "big-build", ctx)
	if imgs := listImages(t, d); len(imgs) != 1 || !hasTag(imgs, "localhost/small:1") {
		t.Fatalf("images after the refusals: %+v", imgs)
	}
}
