package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGuestbookDockerCompose129 runs examples/guestbook, unchanged,
// through Debian's docker-compose 1.29 pointed at skiff's Docker API:
// the images are built by skiff compose build on the same daemon,
// docker-compose up -d starts the database, waits for its healthcheck
// (depends_on: service_healthy) and starts the web application, which
// becomes healthy too. An entry written through the web application
// survives docker-compose down and up -d (the named volume is kept).
func TestGuestbookDockerCompose129(t *testing.T) {
	sock := filepath.Join(env.tmp, "gbdc-docker.sock")
	d, err := startDaemonWith("gbdc", "--docker-socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	t.Cleanup(d.Cleanup)
	proj := guestbookProject(t, d, "gbdc")
	must(t, d, "compose", "-f", filepath.Join(proj, "compose.yaml"), "build")

	port := strconv.Itoa(freePort(t))
	toolEnv := []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + t.TempDir(),
		"DOCKER_BUILDKIT=0", "GUESTBOOK_PORT=" + port}
	compose := func(args ...string) Result {
		return runTool(proj, toolEnv, "", "docker-compose", args...)
	}
	health := func(name string) string {
		r := runTool(proj, toolEnv, "", "docker", "inspect", "-f", "{{.State.Health.Status}}", name)
		return strings.TrimSpace(r.Stdout)
	}
	t.Cleanup(func() { compose("down", "-v") })
	up := func() {
		t.Helper()
		r := compose("up", "-d")
		if r.Code != 0 {
			t.Fatalf("docker-compose up -d: %s", r)
		}
		if got := health("guestbook_db_1"); got != "healthy" {
			t.Fatalf("docker-compose started web before db was healthy (db is %q): %s", got, r)
		}
		eventually(t, 90*time.Second, "the web service to be healthy", func() bool {
			return health("guestbook_web_1") == "healthy"
		})
	}
	up()
	addr := "http://127.0.0.1:" + port + "/"
	guestbookPost(t, addr, "written through docker-compose")
	page := func() string { return guestbookPage(t, addr) }
	if p := page(); !strings.Contains(p, "<li>written through docker-compose</li>") {
		t.Fatalf("the entry is not listed:\n%s", p)
	}

	r := compose("down")
	if r.Code != 0 || !strings.Contains(r.Stderr, "Removing guestbook_db_1") {
		t.Fatalf("docker-compose down: %s", r)
	}
	if out := must(t, d, "ps", "-a"); strings.Contains(out, "guestbook_") {
		t.Fatalf("containers left after down:\n%s", out)
	}
	up()
	if p := page(); !strings.Contains(p, "<li>written through docker-compose</li>") {
		t.Fatalf("the entry did not survive docker-compose down/up:\n%s", p)
	}
	if r := compose("down", "-v"); r.Code != 0 || !strings.Contains(r.Stderr, "Removing volume guestbook_pgdata") {
		t.Fatalf("docker-compose down -v: %s", r)
	}
}
