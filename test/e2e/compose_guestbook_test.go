package e2e

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestComposeGuestbook runs examples/guestbook unchanged on its own
// daemon: a Go web application and a real PostgreSQL built FROM
// localhost/debian-postgresql:bookworm (tagged here from the mmdebstrap
// root), data on a named volume, web waiting for the database's
// healthcheck. An entry written through the web application survives
// down/up and a restart of the daemon; down -v removes it.
func TestComposeGuestbook(t *testing.T) {
	d, err := startDaemon("guestbook")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	t.Cleanup(d.Cleanup)
	proj := guestbookProject(t, d, "guestbook")
	port := strconv.Itoa(freePort(t))
	t.Setenv("GUESTBOOK_PORT", port)
	gb := []string{"compose", "-f", filepath.Join(proj, "compose.yaml")}
	up := func() {
		t.Helper()
		r := d.Run("", append(gb, "up", "-d", "--wait", "--wait-timeout", "120")...)
		if r.Code != 0 {
			t.Fatalf("up: %s", r)
		}
		if !strings.Contains(r.Stderr, "Service db  Healthy") || !strings.Contains(r.Stderr, "Service web  Healthy") {
			t.Errorf("up --wait did not wait for both healthchecks:\n%s", r.Stderr)
		}
	}
	t.Cleanup(func() { d.Run("", append(gb, "down", "-v")...) })
	up()
	addr := "http://127.0.0.1:" + port + "/"
	guestbookPost(t, addr, "written before down")
	page := func() string { return guestbookPage(t, addr) }
	if p := page(); !strings.Contains(p, "<li>written before down</li>") {
		t.Fatalf("the entry is not listed:\n%s", p)
	}

	if r := d.Run("", append(gb, "down")...); r.Code != 0 {
		t.Fatalf("down: %s", r)
	}
	up()
	if p := page(); !strings.Contains(p, "<li>written before down</li>") {
		t.Fatalf("the entry did not survive down/up:\n%s", p)
	}

	d.Stop()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	up()
	if p := page(); !strings.Contains(p, "<li>written before down</li>") {
		t.Fatalf("the entry did not survive a daemon restart:\n%s", p)
	}
	ps := must(t, d, append(gb, "ps")...)
	for _, want := range []string{"guestbook-db-1", "guestbook-web-1"} {
		if !strings.Contains(ps, want) {
			t.Errorf("ps does not list %s:\n%s", want, ps)
		}
	}

	if r := d.Run("", append(gb, "down", "-v")...); r.Code != 0 {
		t.Fatalf("down -v: %s", r)
	}
	if out := must(t, d, "volume", "ls"); strings.Contains(out, "guestbook_pgdata") {
		t.Errorf("down -v kept the volume:\n%s", out)
	}
}

// guestbookProject prepares examples/guestbook for daemon d as a user has
// it: the base image localhost/debian-postgresql:bookworm tagged from the
// mmdebstrap root (as make base-images provides it) and busybox built on
// d, the example copied unchanged into env.tmp/DIR (named guestbook, so
// the project is) with the web binary built. It returns the copy's path.
func guestbookProject(t *testing.T, d *Daemon, dir string) string {
	t.Helper()
	rootfs := debianRootfs(t)
	if err := buildSubset(d, "busybox"); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(env.tmp, dir+"-base")
	os.MkdirAll(base, 0o755)
	if err := os.Link(rootfs, filepath.Join(base, "rootfs.tar")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "Dockerfile"), []byte("FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n"), 0o644)
	must(t, d, "image", "build", "-q", "-t", "localhost/debian-postgresql:bookworm", base)

	src := filepath.Join(env.repo, "examples/guestbook")
	bin := filepath.Join(env.tmp, dir+"-bin")
	cmd := []string{"go", "build", "-C", filepath.Join(src, "web"), "-o", bin, "."}
	if out, err := runCmd(cmd...); err != nil {
		t.Fatalf("build the web application: %v\n%s", err, out)
	}
	proj := filepath.Join(env.tmp, dir, "guestbook")
	os.MkdirAll(filepath.Dir(proj), 0o755)
	if out, err := runCmd("cp", "-r", src, proj); err != nil {
		t.Fatalf("copy the example: %v\n%s", err, out)
	}
	if out, err := runCmd("cp", bin, filepath.Join(proj, "web/guestbook")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return proj
}

// runCmd runs a command (Go builds static) and returns its combined output.
func runCmd(args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// guestbookPost writes msg into the guestbook at addr.
func guestbookPost(t *testing.T, addr, msg string) {
	t.Helper()
	resp, err := http.PostForm(addr, url.Values{"message": {msg}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// guestbookPage is the guestbook's page at addr, once it answers 200.
func guestbookPage(t *testing.T, addr string) string {
	t.Helper()
	return getOK(t, addr, 60*time.Second, "the guestbook to answer")
}

// getOK GETs url until it answers 200 (within limit, or the test fails
// naming what) and returns the body.
func getOK(t *testing.T, url string, limit time.Duration, what string) string {
	t.Helper()
	var body string
	eventually(t, limit, what, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	return body
}
