package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// composeProject writes files (name → content) into a new project
// directory and returns the -f arguments of its compose.yaml.
func composeProject(t *testing.T, files map[string]string) (dir string, args []string) {
	t.Helper()
	dir = t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, []string{"compose", "-f", filepath.Join(dir, "compose.yaml")}
}

// composeRun runs skiff compose ARGS... and fails the test unless it
// exits 0; it returns stdout and stderr together.
func composeRun(t *testing.T, base []string, args ...string) string {
	t.Helper()
	r := skiff(append(append([]string{}, base...), args...)...)
	if r.Code != 0 {
		t.Fatalf("skiff %s: %s", strings.Join(append(base, args...), " "), r)
	}
	return r.Stdout + r.Stderr
}

const composeOrdering = `name: ctest
services:
  db:
    image: busybox
    command: ["sh", "-c", "rm -f /data/ready; sleep 1; echo ok > /data/ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "cat", "/data/ready"]
      interval: 1s
      retries: 20
    volumes: [data:/data]
    stop_grace_period: 1s
  init:
    image: busybox
    command: ["sh", "-c", "sleep 1; echo init-done > /data/init"]
    volumes: [data:/data]
  web:
    image: busybox
    command: ["sh", "-c", "cat /data/ready /data/init || exit 3; echo CHANGE_ME; exec sleep 1000"]
    stop_grace_period: 1s
    depends_on:
      db: {condition: service_healthy}
      init: {condition: service_completed_successfully}
    volumes: [data:/data]
    networks:
      default:
        aliases: [www]
    logging: {driver: syslog}
volumes:
  data: {}
`

// TestComposeUpOrderingAndRecreate brings a project up with each
// depends_on condition, checks names, labels, DNS by service name and
// alias and the unsupported-key warning, then changes one service: a
// second up recreates only it. down keeps the volume; down -v removes it.
func TestComposeUpOrderingAndRecreate(t *testing.T) {
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeOrdering})
	t.Cleanup(func() { skiff(append(base, "down", "-v")...) })

	out := composeRun(t, base, "up", "-d", "--wait")
	for _, want := range []string{"WARNING", "web: logging", "Network ctest_default  Created", "Volume ctest_data  Created", "Container ctest-web-1  Started", "Service db  Healthy"} {
		if !strings.Contains(out, want) {
			t.Errorf("up does not print %q:\n%s", want, out)
		}
	}
	// web started only once db was healthy and init had completed: it
	// read both files (else it exits 3).
	logs := composeRun(t, base, "logs", "web")
	if !strings.Contains(logs, "ctest-web-1  | ok") || !strings.Contains(logs, "ctest-web-1  | init-done") {
		t.Errorf("web did not see db ready and init done:\n%s", logs)
	}
	ps := composeRun(t, base, "ps")
	for _, want := range []string{"ctest-db-1", "ctest-web-1"} {
		if !strings.Contains(ps, want) {
			t.Errorf("ps does not list %s:\n%s", want, ps)
		}
	}
	inspect := must(t, env.daemon, "inspect", "ctest-web-1")
	for _, want := range []string{`"com.docker.compose.project": "ctest"`, `"com.docker.compose.service": "web"`, `"com.docker.compose.config-hash"`} {
		if !strings.Contains(inspect, want) {
			t.Errorf("web lacks the label %s", want)
		}
	}
	if out := must(t, env.daemon, "volume", "inspect", "ctest_data"); !strings.Contains(out, `"com.docker.compose.volume": "data"`) {
		t.Errorf("the volume lacks compose's labels:\n%s", out)
	}
	// DNS: db finds web by its service name and its alias.
	for _, name := range []string{"web", "www", "ctest-web-1"} {
		if r := skiff(append(base, "exec", "db", "nslookup", name)...); r.Code != 0 {
			t.Errorf("db cannot resolve %s: %s", name, r)
		}
	}

	// Change web only: web is recreated, db keeps running.
	changed := strings.Replace(composeOrdering, "CHANGE_ME", "changed", 1)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(changed), 0o644)
	out = composeRun(t, base, "up", "-d", "--wait")
	if !strings.Contains(out, "Container ctest-web-1  Recreated") || !strings.Contains(out, "Container ctest-db-1  Running") ||
		strings.Contains(out, "ctest-db-1  Recreated") {
		t.Errorf("second up did not recreate only web:\n%s", out)
	}
	out = composeRun(t, base, "up", "-d")
	if strings.Contains(out, "Recreated") {
		t.Errorf("an unchanged up recreated something:\n%s", out)
	}

	composeRun(t, base, "down")
	if out := must(t, env.daemon, "ps", "-a"); strings.Contains(out, "ctest-") {
		t.Errorf("down left containers:\n%s", out)
	}
	if out := must(t, env.daemon, "network", "ls"); strings.Contains(out, "ctest_default") {
		t.Errorf("down left the network:\n%s", out)
	}
	if out := must(t, env.daemon, "volume", "ls"); !strings.Contains(out, "ctest_data") {
		t.Errorf("down without -v removed the volume:\n%s", out)
	}
	composeRun(t, base, "down", "-v")
	if out := must(t, env.daemon, "volume", "ls"); strings.Contains(out, "ctest_data") {
		t.Errorf("down -v kept the volume:\n%s", out)
	}
}

// TestComposeStrict checks that --strict refuses unsupported keys and
// creates nothing.
func TestComposeStrict(t *testing.T) {
	_, base := composeProject(t, map[string]string{"compose.yaml": "name: cstrict\nservices:\n  a:\n    image: busybox\n    logging: {driver: syslog}\n"})
	fails(t, env.daemon, []string{"a: logging", "--strict"}, append(base, "--strict", "up", "-d")...)
	if out := must(t, env.daemon, "ps", "-a"); strings.Contains(out, "cstrict") {
		t.Errorf("a refused project made containers:\n%s", out)
	}
}

// TestComposeMalformed checks that malformed projects fail with the file
// and line and change nothing.
func TestComposeMalformed(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad yaml", "services:\n  a:\n    image: busybox\n   b: 1\n", []string{"compose.yaml", "line 3"}},
		{"unknown dependency", "services:\n  a:\n    image: busybox\n    depends_on: [nope]\n", []string{"compose.yaml:4", `undefined service "nope"`}},
		{"cycle", "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n", []string{"compose.yaml:", "cycle"}},
		{"port clash", "services:\n  a:\n    image: busybox\n    ports: [\"18080:80\"]\n  b:\n    image: busybox\n    ports: [\"18080:80\"]\n", []string{"compose.yaml:7", "published twice"}},
		{"missing variable", "services:\n  a:\n    image: ${SKIFF_TEST_UNSET_IMAGE:?set it}\n", []string{"compose.yaml:3", "SKIFF_TEST_UNSET_IMAGE"}},
	}
	before := must(t, env.daemon, "network", "ls")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := composeProject(t, map[string]string{"compose.yaml": "name: cbad\n" + tt.yaml})
			// The name line shifts the file's lines by one.
			want := append([]string{}, tt.want...)
			for i, w := range want {
				for _, prefix := range []string{"compose.yaml:", "line "} {
					if n, err := strconv.Atoi(strings.TrimPrefix(w, prefix)); err == nil && strings.HasPrefix(w, prefix) {
						want[i] = prefix + strconv.Itoa(n+1)
					}
				}
			}
			fails(t, env.daemon, want, append(base, "up", "-d")...)
			if out := must(t, env.daemon, "ps", "-a"); strings.Contains(out, "cbad") {
				t.Errorf("a malformed project made containers:\n%s", out)
			}
		})
	}
	if after := must(t, env.daemon, "network", "ls"); strings.Contains(after, "cbad") || strings.Count(after, "\n") != strings.Count(before, "\n") {
		t.Errorf("malformed projects changed the networks:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestComposeWaitFails checks that up --wait fails naming the service
// that is unhealthy, or that exited.
func TestComposeWaitFails(t *testing.T) {
	_, base := composeProject(t, map[string]string{"compose.yaml": `name: cwait
services:
  sick:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "false"]
      interval: 200ms
      retries: 2
`})
	t.Cleanup(func() { skiff(append(base, "down")...) })
	fails(t, env.daemon, []string{"service sick is unhealthy"}, append(base, "up", "-d", "--wait")...)

	_, base2 := composeProject(t, map[string]string{"compose.yaml": `name: cwait2
services:
  gone:
    image: busybox
    command: ["sh", "-c", "exit 4"]
  after:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    depends_on:
      gone: {condition: service_completed_successfully}
`})
	t.Cleanup(func() { skiff(append(base2, "down")...) })
	fails(t, env.daemon, []string{"service gone", "did not complete successfully", "code 4"}, append(base2, "up", "-d", "--wait")...)
	if out := must(t, env.daemon, "ps", "-a"); strings.Contains(out, "cwait2-after") {
		t.Errorf("a service whose dependency failed was created:\n%s", out)
	}
}

// TestComposeImageHealthcheck checks that a service without a
// healthcheck of its own is waited for with its image's HEALTHCHECK.
func TestComposeImageHealthcheck(t *testing.T) {
	dir, base := composeProject(t, map[string]string{"compose.yaml": `name: cimghc
services:
  slow:
    build: ./slow
    image: localhost/cimghc-slow:1
    command: ["sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 1000"]
    stop_signal: SIGKILL
  user:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    depends_on:
      slow: {condition: service_healthy}
`})
	os.MkdirAll(filepath.Join(dir, "slow"), 0o755)
	os.WriteFile(filepath.Join(dir, "slow/Dockerfile"), []byte("FROM busybox\nHEALTHCHECK --interval=200ms --retries=20 CMD test -f /tmp/ok\n"), 0o644)
	t.Cleanup(func() {
		skiff(append(base, "down")...)
		skiff("image", "rm", "localhost/cimghc-slow:1")
	})
	out := composeRun(t, base, "up", "-d", "--wait")
	if !strings.Contains(out, "Service slow  Healthy") || !strings.Contains(out, "Container cimghc-user-1  Started") {
		t.Errorf("up did not wait for the image's healthcheck:\n%s", out)
	}
	if !strings.Contains(must(t, env.daemon, "image", "inspect", "localhost/cimghc-slow:1"), `"healthcheck"`) {
		t.Errorf("image inspect does not show the HEALTHCHECK")
	}
}

// TestComposeTmpfs checks tmpfs mounts, by the tmpfs key and the volume
// long syntax, with their size, writable on a read-only root.
func TestComposeTmpfs(t *testing.T) {
	_, base := composeProject(t, map[string]string{"compose.yaml": `name: ctmpfs
services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    read_only: true
    tmpfs: ["/scratch:size=1m"]
    volumes:
      - type: tmpfs
        target: /cache
        tmpfs: {size: 2m}
`})
	t.Cleanup(func() { skiff(append(base, "down")...) })
	out := composeRun(t, base, "up", "-d", "--wait")
	if strings.Contains(out, "WARNING") {
		t.Errorf("tmpfs was reported unsupported:\n%s", out)
	}
	mounts := composeRun(t, base, "exec", "app", "cat", "/proc/mounts")
	for _, want := range []string{"tmpfs /scratch tmpfs rw,nosuid,nodev,relatime,size=1024k", "tmpfs /cache tmpfs rw,nosuid,nodev,relatime,size=2048k"} {
		if !strings.Contains(mounts, want) {
			t.Errorf("no %q in the mounts:\n%s", want, mounts)
		}
	}
	composeRun(t, base, "exec", "app", "sh", "-c", "echo x > /scratch/f && echo y > /cache/f")
	if r := skiff(append(base, "exec", "app", "touch", "/f")...); r.Code == 0 {
		t.Errorf("the root is writable despite read_only")
	}
}

// TestComposeBuildPushPull builds a service's image, pushes it to a
// loopback registry and pulls it back for a service that only names it.
func TestComposeBuildPushPull(t *testing.T) {
	reg := startRegistry(t)
	ref := reg + "/cpush/app:1"
	dir, base := composeProject(t, map[string]string{"compose.yaml": "name: cpush\nservices:\n  app:\n    build: ./app\n    image: " + ref + "\n  user:\n    image: " + ref + "\n    profiles: [pull]\n"})
	os.MkdirAll(filepath.Join(dir, "app"), 0o755)
	os.WriteFile(filepath.Join(dir, "app/Dockerfile"), []byte("FROM busybox\nRUN echo built > /built\n"), 0o644)
	t.Cleanup(func() { skiff("image", "rm", ref) })
	out := composeRun(t, base, "build")
	if !strings.Contains(out, "Image "+ref+"  Built") {
		t.Fatalf("build did not say it built the image:\n%s", out)
	}
	if out := composeRun(t, base, "push"); !strings.Contains(out, "Image "+ref+"  Pushed") {
		t.Fatalf("push did not say it pushed:\n%s", out)
	}
	must(t, env.daemon, "image", "rm", ref)
	if out := composeRun(t, append(base, "--profile", "pull"), "pull", "user"); !strings.Contains(out, "Image "+ref+"  Pulled") {
		t.Fatalf("pull did not say it pulled:\n%s", out)
	}
	if out := must(t, env.daemon, "run", "--rm", ref, "cat", "/built"); out != "built\n" {
		t.Errorf("the pulled image lacks the built file: %q", out)
	}
}
