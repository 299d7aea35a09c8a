package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// gitRepo is a repository the GitOps tests commit to with the git CLI.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T, root, name string) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: filepath.Join(root, name)}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content removes one), commits them and
// returns the commit's hash.
func (r *gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// serveGit serves the repositories under root over HTTP on loopback with
// git http-backend, as a git host does; it returns the base URL.
func serveGit(t *testing.T, root string) string {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is not installed: run make deps-test")
	}
	h := &cgi.Handler{Path: gitPath, Root: "/git", Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/git"
}

func gitopsApp(name, version string) string {
	return fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s}
spec:
  image: hello
  port: 8080
  env: [{name: VERSION, value: "%s"}]
  scale: {min: 1, max: 1}
  probes: {readiness: {http: /healthz}}
`, name, version)
}

func getSource(t *testing.T, d *Daemon, name string) api.Source {
	t.Helper()
	var s api.Source
	if err := json.Unmarshal([]byte(must(t, d, "source", "describe", name, "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// socketClient is an HTTP client of d's API socket.
func socketClient(d *Daemon) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
}

// socketGet sends GET path to d's API socket.
func socketGet(t *testing.T, d *Daemon, path string) (int, string) {
	t.Helper()
	resp, err := socketClient(d).Get("http://skiff" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hook posts a webhook call to d's socket and returns its status and body.
func hook(t *testing.T, d *Daemon, name string, header map[string]string, body string) (int, string) {
	t.Helper()
	c := socketClient(d)
	req, _ := http.NewRequest("POST", "http://skiff/hooks/sources/"+name, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func githubSignature(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// serves waits until every answer of app's host says version want.
func serves(t *testing.T, addr, host, want string, limit time.Duration) {
	t.Helper()
	eventually(t, limit, host+" serving version "+want, func() bool {
		for i := 0; i < 5; i++ {
			code, body := get(t, addr, host, "/")
			if code != 200 || !strings.Contains(body, "version "+want) {
				return false
			}
		}
		return true
	})
}

func envValue(a api.App, name string) string {
	for _, e := range a.Spec.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestGitopsSource follows one repository served over HTTP through a
// source's life: first sync, a new image version, a webhook, refused
// calls, a bad file, a prune, a hand edit, history and a revert.
func TestGitopsSource(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	root := t.TempDir()
	repo := newGitRepo(t, root, "deploy")
	base := serveGit(t, root)
	c1 := repo.commit("web and api", map[string]string{
		"apps/web.yaml": gitopsApp("gitops-web", "1"),
		"apps/api.yaml": gitopsApp("gitops-api", "1"),
		"README.md":     "the team's Apps\n",
	})
	const hookSecret = "hook-s3cret"
	must(t, d, "secret", "create", "gitops-hook", "--from-literal", "token="+hookSecret)
	t.Cleanup(func() {
		d.Run("", "source", "rm", "gs")
		d.Run("", "delete", "app", "gitops-web")
		d.Run("", "delete", "app", "gitops-api")
		d.Run("", "secret", "rm", "gitops-hook")
	})

	out := must(t, d, "source", "add", "gs", "--git", base+"/deploy", "--path", "apps", "--interval", "1h", "--webhook-secret", "gitops-hook")
	for _, w := range []string{"app/gitops-api created", "app/gitops-web created", "source/gs at " + c1[:12] + ": Applied"} {
		if !strings.Contains(out, w) {
			t.Fatalf("source add does not say %q:\n%s", w, out)
		}
	}
	serves(t, addr, "gitops-web.localhost", "1", time.Minute)
	eventually(t, time.Minute, "source gs Ready", func() bool { return getSource(t, d, "gs").Status.Ready })
	if a := getApp(t, d, "gitops-web"); a.Metadata.Annotations[api.AnnotationSource] != "gs" {
		t.Fatalf("gitops-web does not name its source: %v", a.Metadata.Annotations)
	}

	t.Run("a commit rolls a new revision", func(t *testing.T) {
		repo.commit("web v2", map[string]string{"apps/web.yaml": gitopsApp("gitops-web", "2")})
		r := d.Run("", "source", "diff", "gs")
		if r.Code != 1 || !strings.Contains(r.Stdout, "app/gitops-web would be configured") || !strings.Contains(r.Stdout, `+      value: "2"`) {
			t.Fatalf("source diff: %s", r)
		}
		if v := envValue(getApp(t, d, "gitops-web"), "VERSION"); v != "1" {
			t.Fatalf("source diff changed gitops-web to version %s", v)
		}
		out := must(t, d, "source", "sync", "gs")
		if !strings.Contains(out, "app/gitops-web configured") || !strings.Contains(out, "app/gitops-api unchanged") {
			t.Fatalf("sync output:\n%s", out)
		}
		serves(t, addr, "gitops-web.localhost", "2", time.Minute)
		if revs := must(t, d, "get", "revisions", "gitops-web"); !strings.Contains(revs, "gitops-web-00002") {
			t.Fatalf("no second revision:\n%s", revs)
		}
	})

	t.Run("a webhook syncs within a second", func(t *testing.T) {
		c3 := repo.commit("web v3", map[string]string{"apps/web.yaml": gitopsApp("gitops-web", "3")})
		body := `{"ref":"refs/heads/main","after":"` + c3 + `"}`
		start := time.Now()
		code, resp := hook(t, d, "gs", map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
			"X-Hub-Signature-256": githubSignature(hookSecret, body)}, body)
		if code != http.StatusAccepted {
			t.Fatalf("webhook: %d %s", code, resp)
		}
		eventually(t, 30*time.Second, "the webhook's commit applied", func() bool {
			code, body := socketGet(t, d, "/v1/apps/gitops-web")
			var a api.App
			return code == 200 && json.Unmarshal([]byte(body), &a) == nil && envValue(a, "VERSION") == "3"
		})
		applied := time.Since(start)
		// The sync the call started: its history entry's time is when it
		// began (the daemon's clock, this machine's).
		var hist []api.SourceHistoryEntry
		if err := json.Unmarshal([]byte(must(t, d, "source", "history", "gs", "-o", "json")), &hist); err != nil {
			t.Fatal(err)
		}
		if len(hist) == 0 || hist[0].Commit != c3 {
			t.Fatalf("the newest history entry is not commit %s: %+v", c3, hist)
		}
		started := hist[0].Time.Sub(start)
		t.Logf("webhook call to sync start: %s, to applied: %s (the sync itself: %s)", started, applied, hist[0].Duration)
		if started > time.Second {
			t.Fatalf("the sync started %s after the webhook call, want within a second", started)
		}
		if s := getSource(t, d, "gs"); s.Status.Commit != c3 {
			t.Fatalf("source at %s, want %s", s.Status.Commit, c3)
		}

		t.Run("bad signature and replay refused", func(t *testing.T) {
			code, resp := hook(t, d, "gs", map[string]string{"X-GitHub-Delivery": "d-2",
				"X-Hub-Signature-256": githubSignature("wrong", body)}, body)
			if code != http.StatusUnauthorized || !strings.Contains(resp, "signature does not match") {
				t.Fatalf("bad signature: %d %s", code, resp)
			}
			code, resp = hook(t, d, "gs", map[string]string{"X-GitHub-Delivery": "d-1",
				"X-Hub-Signature-256": githubSignature(hookSecret, body)}, body)
			if code != http.StatusUnauthorized || !strings.Contains(resp, "replay") {
				t.Fatalf("replayed delivery: %d %s", code, resp)
			}
			code, resp = hook(t, d, "gs", map[string]string{"Authorization": "Bearer " + hookSecret, "X-Skiff-Delivery": "g-1"}, "")
			if code != http.StatusAccepted {
				t.Fatalf("generic bearer call: %d %s", code, resp)
			}
			if ev := must(t, d, "source", "describe", "gs"); !strings.Contains(ev, "WebhookRefused") {
				t.Fatalf("no WebhookRefused event:\n%s", ev)
			}
		})
	})

	t.Run("a bad file fails the sync and changes nothing", func(t *testing.T) {
		good := getSource(t, d, "gs").Status.Commit
		repo.commit("broken", map[string]string{
			"apps/web.yaml": gitopsApp("gitops-web", "4"),
			"apps/bad.yaml": gitopsApp("gitops-bad", "1") + "  replicas: 3\n",
		})
		fails(t, d, []string{"apps/bad.yaml", "line 10", "spec.replicas", "nothing was applied"}, "source", "sync", "gs")
		if v := envValue(getApp(t, d, "gitops-web"), "VERSION"); v != "3" {
			t.Fatalf("a failed sync changed gitops-web to version %s", v)
		}
		if s := getSource(t, d, "gs"); s.Status.Commit != good || s.Status.Ready {
			t.Fatalf("after a failed sync: commit %s (want %s), ready %v", s.Status.Commit, good, s.Status.Ready)
		}
		if r := d.Run("", "get", "apps", "gitops-bad"); r.Code == 0 {
			t.Fatal("gitops-bad was created by a failed sync")
		}
	})

	t.Run("a deleted file prunes", func(t *testing.T) {
		repo.commit("fix, drop api", map[string]string{"apps/bad.yaml": "", "apps/api.yaml": ""})
		out := must(t, d, "source", "sync", "gs")
		if !strings.Contains(out, "app/gitops-api pruned") || !strings.Contains(out, "app/gitops-web configured") {
			t.Fatalf("sync output:\n%s", out)
		}
		eventually(t, 30*time.Second, "gitops-api deleted", func() bool { return d.Run("", "get", "apps", "gitops-api").Code != 0 })
		serves(t, addr, "gitops-web.localhost", "4", time.Minute)
	})

	t.Run("a hand edit is reverted", func(t *testing.T) {
		if r := applyYAML(t, d, gitopsApp("gitops-web", "by-hand")); r.Code != 0 {
			t.Fatal(r)
		}
		out := must(t, d, "source", "sync", "gs")
		if !strings.Contains(out, "drift: gitops-web") || !strings.Contains(out, "app/gitops-web configured") {
			t.Fatalf("sync output:\n%s", out)
		}
		a := getApp(t, d, "gitops-web")
		if envValue(a, "VERSION") != "4" || a.Metadata.Annotations[api.AnnotationSource] != "gs" {
			t.Fatalf("hand edit not reverted: VERSION %s, annotations %v", envValue(a, "VERSION"), a.Metadata.Annotations)
		}
		if ev := must(t, d, "source", "describe", "gs"); !strings.Contains(ev, "DriftReverted") {
			t.Fatalf("no DriftReverted event:\n%s", ev)
		}
	})

	t.Run("history and rollback by revert", func(t *testing.T) {
		repo.commit("web v5", map[string]string{"apps/web.yaml": gitopsApp("gitops-web", "5")})
		must(t, d, "source", "sync", "gs")
		serves(t, addr, "gitops-web.localhost", "5", time.Minute)
		repo.git("revert", "--no-edit", "HEAD")
		reverted := repo.git("rev-parse", "HEAD")
		out := must(t, d, "source", "sync", "gs")
		if !strings.Contains(out, "source/gs at "+reverted[:12]) {
			t.Fatalf("sync output:\n%s", out)
		}
		serves(t, addr, "gitops-web.localhost", "4", time.Minute)
		hist := must(t, d, "source", "history", "gs")
		lines := strings.Split(strings.TrimSpace(hist), "\n")
		if len(lines) < 9 || !strings.HasPrefix(lines[1], reverted[:12]) || !strings.Contains(lines[1], "Applied") ||
			!strings.HasPrefix(lines[len(lines)-1], c1[:12]) || !strings.Contains(hist, "Failed") {
			t.Fatalf("history does not list the syncs, newest first (revert %s, first %s, a failure):\n%s", reverted[:12], c1[:12], hist)
		}
	})
}

// TestGitopsDaemonKilledMidSync kills a daemon while a sync is applying
// (after its first App) and checks that the restarted daemon finishes the
// sync, and that polling then picks up a new commit on its own.
func TestGitopsDaemonKilledMidSync(t *testing.T) {
	d, err := startDaemonPaused(t, "gitops-crash", "gitops-apply")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	root := t.TempDir()
	repo := newGitRepo(t, root, "deploy")
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		files[n+".yaml"] = fmt.Sprintf("apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: crash-%s}\nspec:\n  image: hello\n  scale: {min: 0}\n", n)
	}
	c1 := repo.commit("three apps", files)
	must(t, d, "source", "add", "crash", "--git", "file://"+repo.dir, "--interval", "1s", "--no-wait")
	eventually(t, 30*time.Second, "the sync paused after its first App", func() bool {
		b, _ := os.ReadFile(d.Log)
		return strings.Contains(string(b), "paused for a test")
	})
	if s := getSource(t, d, "crash"); s.Status.Syncing != c1 {
		t.Fatalf("the sync under way is not recorded: syncing %q, want %s", s.Status.Syncing, c1)
	}
	if out := must(t, d, "get", "apps"); strings.Contains(out, "crash-b") || !strings.Contains(out, "crash-a") {
		t.Fatalf("the pause is not after the first App:\n%s", out)
	}
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the sync finished after the restart", func() bool {
		s := getSource(t, d, "crash")
		return s.Status.Commit == c1 && s.Status.Syncing == "" && s.Status.LastResult != api.SourceResultFailed && s.Status.LastResult != ""
	})
	out := must(t, d, "get", "apps")
	for _, n := range []string{"crash-a", "crash-b", "crash-c"} {
		if !strings.Contains(out, n) {
			t.Fatalf("%s missing after the restart:\n%s", n, out)
		}
	}
	c2 := repo.commit("drop c", map[string]string{"c.yaml": ""})
	eventually(t, 30*time.Second, "polling applies the new commit", func() bool {
		return getSource(t, d, "crash").Status.Commit == c2
	})
	if out := must(t, d, "get", "apps"); strings.Contains(out, "crash-c") {
		t.Fatalf("crash-c not pruned:\n%s", out)
	}
}

// startDaemonPaused starts a daemon of its own whose first start stops at
// the SKIFF_TEST_PAUSE point pause; later Starts do not pause.
func startDaemonPaused(t *testing.T, name, pause string) (*Daemon, error) {
	os.Setenv("SKIFF_TEST_PAUSE", pause)
	defer os.Unsetenv("SKIFF_TEST_PAUSE")
	return startDaemon(name)
}
