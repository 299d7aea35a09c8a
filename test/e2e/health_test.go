package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The daemon's health checks: run --health-*, the image's HEALTHCHECK,
// State.Health in inspect, ps's status and filter, a restart of the
// daemon, the Docker API and compose's service_healthy.

// healthOf is the container's State.Health as inspect shows it.
type healthOf struct {
	Status        string `json:"status"`
	FailingStreak int    `json:"failingStreak"`
	Log           []struct {
		Start    time.Time `json:"start"`
		End      time.Time `json:"end"`
		ExitCode int       `json:"exitCode"`
		Output   string    `json:"output"`
	} `json:"log"`
}

// inspectHealth returns the container's health, nil when it has none.
func inspectHealth(t *testing.T, d *Daemon, name string) *healthOf {
	t.Helper()
	var cs []struct {
		State struct {
			Health *healthOf `json:"health"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(must(t, d, "inspect", "--type", "container", name)), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return cs[0].State.Health
}

// waitHealth waits until the container's health status is want.
func waitHealth(t *testing.T, d *Daemon, name, want string, limit time.Duration) *healthOf {
	t.Helper()
	var h *healthOf
	eventually(t, limit, name+" to be "+want, func() bool {
		h = inspectHealth(t, d, name)
		return h != nil && h.Status == want
	})
	return h
}

// psLine is the ps line of the container named name ("" if none).
func psLine(t *testing.T, d *Daemon, name string, args ...string) string {
	t.Helper()
	for _, l := range strings.Split(must(t, d, append([]string{"ps"}, args...)...), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == name {
			return l
		}
	}
	return ""
}

// TestHealthStartingToHealthy: a container with --health-cmd starts
// "starting" and turns healthy once its check passes; ps shows it and
// filters on it.
func TestHealthStartingToHealthy(t *testing.T) {
	name := "health-ok"
	t.Cleanup(func() { skiff("rm", "-f", name) })
	must(t, env.daemon, "run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok && echo fine",
		"--health-interval", "200ms", "--health-retries", "30", "--stop-signal", "SIGKILL",
		"busybox", "sh", "-c", "sleep 2; touch /tmp/ok; exec sleep 1000")
	if h := inspectHealth(t, env.daemon, name); h == nil || h.Status != "starting" {
		t.Fatalf("health right after the start = %+v, want starting", h)
	}
	if l := psLine(t, env.daemon, name); !strings.Contains(l, "(health: starting)") {
		t.Errorf("ps while starting: %q", l)
	}
	h := waitHealth(t, env.daemon, name, "healthy", 20*time.Second)
	last := h.Log[len(h.Log)-1]
	if h.FailingStreak != 0 || last.ExitCode != 0 || last.Output != "fine\n" || !last.End.After(last.Start) {
		t.Errorf("healthy state = %+v", h)
	}
	if l := psLine(t, env.daemon, name); !strings.Contains(l, "Up ") || !strings.Contains(l, "(healthy)") {
		t.Errorf("ps when healthy: %q", l)
	}
	if psLine(t, env.daemon, name, "--filter", "health=healthy") == "" || psLine(t, env.daemon, name, "--filter", "health=starting") != "" {
		t.Errorf("ps --filter health= does not follow the health")
	}
	if got := strings.TrimSpace(must(t, env.daemon, "inspect", "-f", "{{.State.Health.Status}}", name)); got != "healthy" {
		t.Errorf("inspect -f {{.State.Health.Status}} = %q", got)
	}
	fails(t, env.daemon, []string{"--no-healthcheck conflicts"}, "run", "--no-healthcheck", "--health-cmd", "true", "busybox", "true")
	fails(t, env.daemon, []string{"health=sick", "starting, healthy, unhealthy, none"}, "ps", "--filter", "health=sick")
}

// TestHealthUnhealthy: a failing check makes the container unhealthy
// after its retries, with the checks' output and exit codes in the log;
// a check past its timeout is killed inside the container; once the
// container stops, no check runs any more.
func TestHealthUnhealthy(t *testing.T) {
	name, slow := "health-bad", "health-slow"
	t.Cleanup(func() { skiff("rm", "-f", name, slow) })
	must(t, env.daemon, "run", "-d", "--name", name, "--health-cmd", "echo broken >&2; exit 3",
		"--health-interval", "100ms", "--health-retries", "3", "--stop-signal", "SIGKILL", "busybox", "sleep", "1000")
	h := waitHealth(t, env.daemon, name, "unhealthy", 15*time.Second)
	if h.FailingStreak < 3 || len(h.Log) == 0 || len(h.Log) > 5 {
		t.Fatalf("unhealthy state = %+v, want a streak of 3 or more and 1-5 log entries", h)
	}
	for _, r := range h.Log {
		if r.ExitCode != 3 || r.Output != "broken\n" {
			t.Errorf("log entry %+v, want exit code 3 and output broken", r)
		}
	}
	if l := psLine(t, env.daemon, name); !strings.Contains(l, "(unhealthy)") {
		t.Errorf("ps when unhealthy: %q", l)
	}
	eventually(t, 10*time.Second, "the log to keep its last 5 checks", func() bool { return len(inspectHealth(t, env.daemon, name).Log) == 5 })
	if ev := must(t, env.daemon, "events"); !regexp.MustCompile(`container/health-bad\s+Warning\s+Unhealthy\s+health_status: unhealthy: the health check failed 3 times in a row: broken`).MatchString(ev) {
		t.Errorf("skiff events does not record the unhealthy container:\n%s", ev)
	}

	must(t, env.daemon, "run", "-d", "--name", slow, "--health-cmd", "sleep 77",
		"--health-interval", "100ms", "--health-timeout", "300ms", "--health-retries", "1", "--stop-signal", "SIGKILL", "busybox", "sleep", "1000")
	h = waitHealth(t, env.daemon, slow, "unhealthy", 15*time.Second)
	if r := h.Log[0]; r.ExitCode != -1 || !strings.Contains(r.Output, "exceeded timeout (300ms)") {
		t.Errorf("timed-out check logged as %+v", r)
	}
	// Each check is killed at its timeout: at most the one under way runs.
	time.Sleep(time.Second)
	if ps := must(t, env.daemon, "exec", slow, "ps", "-o", "args"); strings.Count(ps, "sleep 77") > 1 {
		t.Errorf("timed-out checks are still running in the container:\n%s", ps)
	}

	must(t, env.daemon, "stop", name)
	stopped := inspectHealth(t, env.daemon, name)
	time.Sleep(500 * time.Millisecond)
	after := inspectHealth(t, env.daemon, name)
	if stopped.Status != "unhealthy" || len(after.Log) != len(stopped.Log) || after.Log[len(after.Log)-1].Start != stopped.Log[len(stopped.Log)-1].Start {
		t.Errorf("checks went on after the stop: %+v then %+v", stopped, after)
	}
	if l := psLine(t, env.daemon, name, "-a"); !strings.Contains(l, "Exited") || strings.Contains(l, "healthy") {
		t.Errorf("ps -a of a stopped container: %q", l)
	}
}

// buildHealthImage builds localhost/health-img:1 on d, busybox with a
// HEALTHCHECK that passes.
func buildHealthImage(t *testing.T, d *Daemon) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nHEALTHCHECK --interval=200ms --retries=2 CMD [\"sh\", \"-c\", \"echo image check\"]\nCMD [\"sleep\", \"1000\"]\n"), 0o644)
	must(t, d, "image", "build", "-q", "-t", "localhost/health-img:1", dir)
	return "localhost/health-img:1"
}

// TestHealthImageHealthcheck: the image's HEALTHCHECK runs by default,
// --health-* timings complete it, and --no-healthcheck turns it off.
func TestHealthImageHealthcheck(t *testing.T) {
	img := buildHealthImage(t, env.daemon)
	t.Cleanup(func() {
		skiff("rm", "-f", "health-img", "health-img-off", "health-img-timed")
		skiff("image", "rm", img)
	})
	must(t, env.daemon, "run", "-d", "--name", "health-img", "--stop-signal", "SIGKILL", img)
	h := waitHealth(t, env.daemon, "health-img", "healthy", 15*time.Second)
	if h.Log[0].Output != "image check\n" {
		t.Errorf("the image's check did not run: %+v", h)
	}
	if cfg := must(t, env.daemon, "inspect", "-f", "{{json .Config.Healthcheck}}", "health-img"); !strings.Contains(cfg, `"echo image check"`) {
		t.Errorf("the container's config does not show the image's check: %s", cfg)
	}
	must(t, env.daemon, "run", "-d", "--name", "health-img-timed", "--health-retries", "7", "--stop-signal", "SIGKILL", img)
	waitHealth(t, env.daemon, "health-img-timed", "healthy", 15*time.Second)
	if cfg := must(t, env.daemon, "inspect", "-f", "{{json .Config.Healthcheck}}", "health-img-timed"); !strings.Contains(cfg, `"retries":7`) || !strings.Contains(cfg, "echo image check") {
		t.Errorf("--health-retries did not complete the image's check: %s", cfg)
	}

	must(t, env.daemon, "run", "-d", "--name", "health-img-off", "--no-healthcheck", "--stop-signal", "SIGKILL", img)
	time.Sleep(time.Second)
	if h := inspectHealth(t, env.daemon, "health-img-off"); h != nil {
		t.Errorf("--no-healthcheck container has a health: %+v", h)
	}
	if l := psLine(t, env.daemon, "health-img-off"); l == "" || strings.Contains(l, "(health") {
		t.Errorf("ps of a container without check: %q", l)
	}
	if psLine(t, env.daemon, "health-img-off", "--filter", "health=none") == "" || psLine(t, env.daemon, "health-img", "--filter", "health=none") != "" {
		t.Errorf("ps --filter health=none is wrong")
	}
}

// TestHealthDaemonRestart: the health status survives a daemon restart
// and the monitor runs again for the adopted container.
func TestHealthDaemonRestart(t *testing.T) {
	d := crashDaemonFor(t)
	name := "health-restart"
	t.Cleanup(func() { d.Run("", "rm", "-f", name) })
	must(t, d, "run", "-d", "--name", name, "--health-cmd", "test ! -f /tmp/sick",
		"--health-interval", "200ms", "--health-retries", "1", "--stop-signal", "SIGKILL", "busybox", "sleep", "1000")
	before := waitHealth(t, d, name, "healthy", 15*time.Second)
	restartPaused(t, d, "")
	after := inspectHealth(t, d, name)
	if after == nil || after.Status != "healthy" || len(after.Log) < len(before.Log) {
		t.Fatalf("health after the daemon's restart = %+v, before %+v", after, before)
	}
	must(t, d, "exec", name, "touch", "/tmp/sick")
	h := waitHealth(t, d, name, "unhealthy", 15*time.Second)
	if last := h.Log[len(h.Log)-1]; last.ExitCode != 1 {
		t.Errorf("the resumed monitor logged %+v", last)
	}
}

// TestHealthDockerCLI: the docker CLI's --health-* flags through the
// Docker API, State.Health in docker inspect, docker ps's status and
// health filter, and the health_status event.
func TestHealthDockerCLI(t *testing.T) {
	dockerDaemon(t)
	name := "health-docker"
	t.Cleanup(func() { docker(t, "", "rm", "-f", name) })
	since := time.Now().Add(-time.Second).Unix()
	dockerOK(t, "run", "-d", "--name", name, "--health-cmd", "echo docker check", "--health-interval", "200ms",
		"--health-retries", "2", "--stop-signal", "SIGKILL", "busybox", "sleep", "1000")
	eventually(t, 15*time.Second, "docker inspect to say healthy", func() bool {
		return strings.TrimSpace(dockerOK(t, "inspect", "-f", "{{.State.Health.Status}}", name)) == "healthy"
	})
	if out := dockerOK(t, "inspect", "-f", "{{(index .State.Health.Log 0).Output}}|{{.Config.Healthcheck.Interval}}|{{.Config.Healthcheck.Retries}}", name); out != "docker check\n|200ms|2\n" {
		t.Errorf("docker inspect of the check = %q", out)
	}
	if out := dockerOK(t, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"); !regexp.MustCompile(`(?m)^health-docker Up .* \(healthy\)$`).MatchString(out) {
		t.Errorf("docker ps --filter health=healthy:\n%s", out)
	}
	until := time.Now().Add(time.Second).Unix()
	ev := dockerOK(t, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(until, 10),
		"--filter", "container="+name, "--filter", "event=health_status", "--format", "{{.Action}}")
	if strings.TrimSpace(ev) != "health_status: healthy" {
		t.Errorf("docker events health_status = %q", ev)
	}
	off := name + "-off"
	t.Cleanup(func() { docker(t, "", "rm", "-f", off) })
	dockerOK(t, "run", "-d", "--name", off, "--no-healthcheck", "busybox", "sleep", "1000")
	if out := dockerOK(t, "inspect", "-f", "{{.State.Health}}|{{json .Config.Healthcheck}}", off); out != `<nil>|{"Test":["NONE"]}`+"\n" {
		t.Errorf("docker inspect with --no-healthcheck = %q", out)
	}
}

// TestHealthCompose: a service's healthcheck becomes the daemon's check
// of its container; depends_on service_healthy and up --wait follow the
// daemon's status, and compose ps shows it.
func TestHealthCompose(t *testing.T) {
	_, base := composeProject(t, map[string]string{"compose.yaml": `name: chealth
services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 1; date +%s%N > /tmp/ready; exec sleep 1000"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready && echo db ready"]
      interval: 200ms
      retries: 30
  web:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    healthcheck:
      disable: true
    depends_on:
      db: {condition: service_healthy}
`})
	t.Cleanup(func() { skiff(append(base, "down")...) })
	out := composeRun(t, base, "up", "-d", "--wait")
	if !strings.Contains(out, "Service db  Healthy") {
		t.Errorf("up --wait did not report db healthy:\n%s", out)
	}
	// The daemon ran the check: its log holds the check's output, and
	// the check passed before web was created.
	h := inspectHealth(t, env.daemon, "chealth-db-1")
	if h == nil || h.Status != "healthy" || h.Log[len(h.Log)-1].Output != "db ready\n" {
		t.Fatalf("db's health = %+v", h)
	}
	var web []struct {
		Created time.Time `json:"created"`
	}
	json.Unmarshal([]byte(must(t, env.daemon, "inspect", "chealth-web-1")), &web)
	var passed time.Time
	for _, r := range h.Log {
		if r.ExitCode == 0 {
			passed = r.End
			break
		}
	}
	if len(web) != 1 || passed.IsZero() || web[0].Created.Before(passed) {
		t.Errorf("web was created at %v, before db's check passed at %v", web, passed)
	}
	if hw := inspectHealth(t, env.daemon, "chealth-web-1"); hw != nil {
		t.Errorf("web's disabled healthcheck runs: %+v", hw)
	}
	ps := composeRun(t, base, "ps")
	if !regexp.MustCompile(`chealth-db-1 .* Up .* \(healthy\)`).MatchString(ps) {
		t.Errorf("compose ps does not show db healthy:\n%s", ps)
	}
}
