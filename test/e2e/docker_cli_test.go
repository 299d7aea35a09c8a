package e2e

import (
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
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// dockerEnv is a daemon serving the Docker API on its own socket, with
// the busybox and echoserver test images, under the default (baseline)
// admission profile with env.tmp/docker-share allowed for bind mounts.
var dockerEnv struct {
	once   sync.Once
	d      *Daemon
	socket string
	share  string
	err    error
}

// dockerDaemon starts the Docker API daemon once for the tests that use it.
func dockerDaemon(t *testing.T) *Daemon {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("the docker CLI (a client, version 28) is needed for the Docker API tests: install it")
	}
	dockerEnv.once.Do(func() {
		dockerEnv.socket = filepath.Join(env.tmp, "docker-engine.sock")
		dockerEnv.share = filepath.Join(env.tmp, "docker-share")
		if dockerEnv.err = os.MkdirAll(dockerEnv.share, 0o755); dockerEnv.err != nil {
			return
		}
		d, err := startDaemonWith("dockerapi", "--docker-socket", dockerEnv.socket, "--allow-host-path", dockerEnv.share)
		if d != nil {
			extraDaemons = append(extraDaemons, d)
		}
		if err != nil {
			dockerEnv.err = err
			return
		}
		dockerEnv.d = d
		for _, name := range []string{"busybox", "echoserver"} {
			if r := d.Run("", "image", "build", "-q", "-t", name, filepath.Join(env.tmp, "contexts", name)); r.Code != 0 {
				dockerEnv.err = fmt.Errorf("build image %s: %s", name, r)
				return
			}
		}
	})
	if dockerEnv.err != nil {
		t.Fatal(dockerEnv.err)
	}
	return dockerEnv.d
}

// docker runs the docker CLI against the Docker API socket, with a
// 2-minute bound.
func docker(t *testing.T, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerEnv.socket, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// dockerOK runs docker and fails the test unless it exits 0.
func dockerOK(t *testing.T, args ...string) string {
	t.Helper()
	r := docker(t, "", args...)
	if r.Code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// dockerAPI sends a request straight to the Docker API socket.
func dockerAPI(t *testing.T, method, path, body string) (int, http.Header, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", dockerEnv.socket)
	}}}
	req, _ := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestDockerAPIProtocol checks version negotiation and Docker's error
// bodies and statuses.
func TestDockerAPIProtocol(t *testing.T) {
	dockerDaemon(t)
	code, h, body := dockerAPI(t, "GET", "/_ping", "")
	if code != 200 || body != "OK" || h.Get("Api-Version") != "1.51" {
		t.Fatalf("_ping = %d %q Api-Version %q", code, body, h.Get("Api-Version"))
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/v1.12/version", "", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"},
		{"GET", "/v1.24/containers/nosuch/json", "", 404, "No such container: nosuch"},
		{"POST", "/v1.47/containers/nosuch/stop", "", 404, "No such container: nosuch"},
		{"POST", "/v1.47/containers/create", `{"Image":"busybox","HostConfig":{"DeviceRequests":[{"Count":1,"Capabilities":[["gpu"]]}]}}`, 400, "HostConfig.DeviceRequests"},
		{"POST", "/v1.47/containers/create", `{"Image":"busybox","HostConfig":{"PidMode":"host"}}`, 400, "HostConfig.PidMode"},
		{"POST", "/v1.47/containers/create", `{"Image":"busybox","HostConfig":{"Privileged":true}}`, 400, "privileged containers are not allowed"},
		{"GET", "/v1.47/containers/json?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D", "", 400, "invalid filter 'bogus'"},
		{"POST", "/v1.47/swarm/init", "{}", 501, "skiff does not serve the Docker API endpoint POST /swarm/init"},
	} {
		code, _, body := dockerAPI(t, tc.method, tc.path, tc.body)
		var e struct{ Message string }
		if code != tc.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s %s = %d %s, want %d with message %q", tc.method, tc.path, code, body, tc.code, tc.msg)
		}
	}
	out := dockerOK(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.Platform.Name}}")
	if strings.TrimSpace(out) != "1.51 skiff" {
		t.Errorf("docker version = %q, want 1.51 skiff", out)
	}
}

// TestDockerCLIRun drives docker run in its common forms.
func TestDockerCLIRun(t *testing.T) {
	dockerDaemon(t)
	if out := dockerOK(t, "run", "--rm", "busybox", "echo", "hello"); out != "hello\n" {
		t.Errorf("docker run echo = %q", out)
	}
	if r := docker(t, "", "run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 7"); r.Code != 7 || r.Stdout != "" || !strings.Contains(r.Stderr, "oops") {
		t.Errorf("docker run exit 7 with stderr: %s", r)
	}
	if out := dockerOK(t, "run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "busybox", "sh", "-c", "echo $FOO $(pwd)"); out != "bar /tmp\n" {
		t.Errorf("docker run -e -w = %q", out)
	}
	if r := docker(t, "piped\n", "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end"); r.Code != 0 || r.Stdout != "piped\nend\n" {
		t.Errorf("docker run -i with stdin: %s", r)
	}
	// A host directory bind-mounted, read-only.
	os.WriteFile(filepath.Join(dockerEnv.share, "greeting"), []byte("from the host\n"), 0o644)
	if out := dockerOK(t, "run", "--rm", "-v", dockerEnv.share+":/share:ro", "busybox", "sh", "-c", "cat /share/greeting; touch /share/x 2>/dev/null || echo read-only"); out != "from the host\nread-only\n" {
		t.Errorf("docker run -v :ro = %q", out)
	}
	// A named volume keeps data between containers.
	dockerOK(t, "run", "--rm", "-v", "dockervol:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if out := dockerOK(t, "run", "--rm", "-v", "dockervol:/data", "busybox", "cat", "/data/f"); out != "kept\n" {
		t.Errorf("named volume = %q", out)
	}
	// The admission policy applies: a host path outside the allow list.
	if r := docker(t, "", "run", "--rm", "-v", "/etc:/host", "busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "/etc") || !strings.Contains(r.Stderr, "allow") {
		t.Errorf("docker run -v /etc is not refused by the policy: %s", r)
	}
	// --rm removes the container.
	if out := dockerOK(t, "ps", "-aq", "--filter", "ancestor=busybox"); strings.TrimSpace(out) != "" {
		t.Errorf("--rm containers are left: %q", out)
	}
	// container prune removes the stopped containers its filter names.
	kept := strings.TrimSpace(dockerOK(t, "create", "-l", "prune=keep", "busybox", "true"))
	defer docker(t, "", "rm", "-f", kept)
	pruned := strings.TrimSpace(dockerOK(t, "create", "-l", "prune=me", "busybox", "true"))
	if out := dockerOK(t, "container", "prune", "-f", "--filter", "label=prune=me"); !strings.Contains(out, pruned) || strings.Contains(out, kept) {
		t.Errorf("docker container prune --filter label=prune=me:\n%s", out)
	}
	if out := dockerOK(t, "ps", "-aq", "--filter", "label=prune"); strings.TrimSpace(out) != kept[:12] {
		t.Errorf("after prune, ps lists %q, want only %s", out, kept[:12])
	}
	// A pseudo-terminal: docker run -it through script(1).
	cmd := exec.Command("script", "-qec", "docker run --rm -it busybox sh -c 'tty; stty size'", "/dev/null")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerEnv.socket, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"))
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/dev/pts/") {
		t.Errorf("docker run -it: %v\n%s", err, out)
	}
}

// TestDockerCLIContainers drives a long-running container through ps,
// logs, exec, inspect, top, stats, port publishing, stop, kill, wait
// and rm, and checks it is one state with skiff's own CLI.
func TestDockerCLIContainers(t *testing.T) {
	d := dockerDaemon(t)
	os.WriteFile(filepath.Join(dockerEnv.share, "index.html"), []byte("served by busybox\n"), 0o644)
	id := strings.TrimSpace(dockerOK(t, "run", "-d", "--name", "web", "-l", "tier=front", "-p", "127.0.0.1::8080",
		"-v", dockerEnv.share+":/www", "busybox", "sh", "-c", "echo starting; echo warn >&2; exec httpd -f -p 8080 -h /www"))
	defer docker(t, "", "rm", "-f", "web")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("docker run -d printed %q, want a container ID", id)
	}
	// ps and its filters.
	if out := dockerOK(t, "ps", "-q", "--filter", "label=tier=front"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("ps --filter label = %q, want %s", out, id[:12])
	}
	if out := dockerOK(t, "ps", "-q", "--filter", "name=web", "--filter", "status=running"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("ps --filter name,status = %q", out)
	}
	if out := dockerOK(t, "ps", "-q", "--filter", "status=exited", "--filter", "name=web"); strings.TrimSpace(out) != "" {
		t.Errorf("ps --filter status=exited lists the running web: %q", out)
	}
	// One state: skiff's CLI sees the container, docker sees skiff's.
	if out := must(t, d, "ps"); !strings.Contains(out, "web") {
		t.Errorf("skiff ps does not list the docker container:\n%s", out)
	}
	must(t, d, "run", "-d", "--name", "fromskiff", "busybox", "sleep", "600")
	defer must(t, d, "rm", "-f", "fromskiff")
	if out := dockerOK(t, "ps", "--format", "{{.Names}}"); !strings.Contains(out, "fromskiff") {
		t.Errorf("docker ps does not list skiff's container:\n%s", out)
	}
	// The published port answers.
	port := strings.TrimSpace(dockerOK(t, "inspect", "--format", `{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}`, "web"))
	body := getOK(t, "http://127.0.0.1:"+port+"/index.html", 10*time.Second, "the published port to answer")
	if body != "served by busybox\n" {
		t.Errorf("GET through the published port = %q", body)
	}
	if out := dockerOK(t, "port", "web"); !strings.Contains(out, "8080/tcp -> 127.0.0.1:"+port) {
		t.Errorf("docker port = %q", out)
	}
	// Logs keep stdout and stderr apart.
	r := docker(t, "", "logs", "web")
	if r.Code != 0 || r.Stdout != "starting\n" || r.Stderr != "warn\n" {
		t.Errorf("docker logs: %s", r)
	}
	// exec, with its exit code and with stdin.
	if r := docker(t, "", "exec", "web", "sh", "-c", "echo in-exec; exit 3"); r.Code != 3 || r.Stdout != "in-exec\n" {
		t.Errorf("docker exec exit 3: %s", r)
	}
	if r := docker(t, "to cat\n", "exec", "-i", "web", "cat"); r.Code != 0 || r.Stdout != "to cat\n" {
		t.Errorf("docker exec -i: %s", r)
	}
	// exec -it on a pseudo-terminal, through script(1).
	cmd := exec.Command("script", "-qec", "docker exec -it web sh -c 'tty; echo exec-tty'", "/dev/null")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerEnv.socket, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"))
	cmd.Stdin = strings.NewReader("")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "exec-tty") {
		t.Errorf("docker exec -it: %v\n%s", err, out)
	}
	if out := dockerOK(t, "inspect", "--format", "{{.State.Status}} {{.Name}} {{.Config.Labels.tier}} {{.HostConfig.Binds}}", "web"); strings.TrimSpace(out) != "running /web front ["+dockerEnv.share+":/www]" {
		t.Errorf("docker inspect = %q", out)
	}
	if out := dockerOK(t, "top", "web"); !strings.Contains(out, "httpd -f -p 8080") || !strings.Contains(out, "PID") {
		t.Errorf("docker top:\n%s", out)
	}
	if out := dockerOK(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web"); strings.TrimSpace(out) != "web 1" {
		t.Errorf("docker stats --no-stream = %q", out)
	}
	// rm of a running container, kill, wait's exit code, rm.
	if r := docker(t, "", "rm", "web"); r.Code != 1 || !strings.Contains(r.Stderr, "container is running: stop the container before removing or force remove") {
		t.Errorf("docker rm of a running container: %s", r)
	}
	dockerOK(t, "kill", "web")
	if out := dockerOK(t, "wait", "web"); strings.TrimSpace(out) != "137" {
		t.Errorf("docker wait after kill = %q, want 137", out)
	}
	if r := docker(t, "", "kill", "web"); r.Code == 0 || !strings.Contains(r.Stderr, "is not running") {
		t.Errorf("docker kill of a stopped container: %s", r)
	}
	dockerOK(t, "rm", "web")
	if r := docker(t, "", "stop", "web"); r.Code != 1 || !strings.Contains(r.Stderr, "No such container: web") {
		t.Errorf("docker stop of a removed container: %s", r)
	}
}

// TestDockerCLIStopAndNetwork checks stop's grace period and exit code,
// logs -f to the end, and a user network with an alias.
func TestDockerCLIStopAndNetwork(t *testing.T) {
	d := dockerDaemon(t)
	must(t, d, "network", "create", "dockernet")
	defer d.Run("", "network", "rm", "dockernet")
	dockerOK(t, "run", "-d", "--name", "svc", "--network", "dockernet", "--network-alias", "db", "busybox",
		"sh", "-c", "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.1; done")
	defer docker(t, "", "rm", "-f", "svc")
	out := dockerOK(t, "inspect", "--format", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.Aliases}} {{$v.IPAddress}}{{end}}`, "svc")
	m := regexp.MustCompile(`^dockernet \[db\] (\d+\.\d+\.\d+\.\d+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("network settings = %q", out)
	}
	// Another container on the network finds it by its alias.
	if out := dockerOK(t, "run", "--rm", "--network", "dockernet", "busybox", "nslookup", "db"); !strings.Contains(out, "Address: "+m[1]) {
		t.Errorf("nslookup db on the network does not give %s:\n%s", m[1], out)
	}
	// A fixed address (--ip), and a further network joined with one.
	must(t, d, "network", "create", "--subnet", "10.213.90.0/24", "dockerfixed")
	defer d.Run("", "network", "rm", "dockerfixed")
	dockerOK(t, "run", "-d", "--name", "fixed", "--network", "dockerfixed", "--ip", "10.213.90.40", "busybox", "sleep", "600")
	defer docker(t, "", "rm", "-f", "fixed")
	if out := dockerOK(t, "inspect", "--format", `{{.NetworkSettings.Networks.dockerfixed.IPAddress}}`, "fixed"); out != "10.213.90.40\n" {
		t.Errorf("docker run --ip: address %q", out)
	}
	dockerOK(t, "network", "connect", "--ip", "10.213.90.41", "--alias", "svc-fixed", "dockerfixed", "svc")
	if out := dockerOK(t, "exec", "svc", "ip", "-o", "-4", "addr", "show", "eth1"); !strings.Contains(out, "inet 10.213.90.41/24") {
		t.Errorf("docker network connect --ip: eth1 is\n%s", out)
	}
	if out := dockerOK(t, "exec", "fixed", "nslookup", "svc-fixed"); !strings.Contains(out, "Address: 10.213.90.41") {
		t.Errorf("the alias given at connect:\n%s", out)
	}
	if r := docker(t, "", "run", "--rm", "--network", "dockerfixed", "--ip", "10.213.90.40", "busybox", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "in use by container fixed") {
		t.Errorf("docker run --ip of a held address: %s", r)
	}
	dockerOK(t, "network", "disconnect", "dockerfixed", "svc")
	if r := docker(t, "", "exec", "svc", "ip", "-o", "-4", "addr", "show", "eth1"); r.Code == 0 {
		t.Errorf("eth1 after docker network disconnect: %s", r)
	}
	logs := make(chan Result, 1)
	go func() { logs <- docker(t, "", "logs", "-f", "svc") }()
	time.Sleep(300 * time.Millisecond)
	dockerOK(t, "stop", "-t", "5", "svc")
	if out := dockerOK(t, "wait", "svc"); strings.TrimSpace(out) != "0" {
		t.Errorf("exit code after a trapped TERM = %q, want 0", out)
	}
	select {
	case r := <-logs:
		if r.Code != 0 || r.Stdout != "up\nbye\n" {
			t.Errorf("docker logs -f: %s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("docker logs -f did not end when the container stopped")
	}
}

// TestDockerCLIEvents checks docker events over a container's life,
// filtered by container.
func TestDockerCLIEvents(t *testing.T) {
	dockerDaemon(t)
	since := time.Now().Add(-time.Second).Unix()
	if r := docker(t, "", "run", "--name", "evented", "busybox", "sh", "-c", "exit 2"); r.Code != 2 {
		t.Fatalf("docker run exit 2: %s", r)
	}
	dockerOK(t, "run", "--rm", "busybox", "true")
	dockerOK(t, "rm", "evented")
	until := time.Now().Add(time.Second).Unix()
	out := dockerOK(t, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(until), "--filter", "container=evented",
		"--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}{{with .Actor.Attributes.exitCode}} {{.}}{{end}}")
	want := "container create evented\ncontainer start evented\ncontainer die evented 2\ncontainer destroy evented\n"
	if out != want {
		t.Errorf("docker events =\n%s\nwant\n%s", out, want)
	}
}

// TestDockerCLICopy checks docker cp both ways, into a running and a
// stopped container, and that a symlink in the container cannot carry
// a copy out of its root filesystem.
func TestDockerCLICopy(t *testing.T) {
	dockerDaemon(t)
	src := filepath.Join(t.TempDir(), "in")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("one\n"), 0o640)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("two\n"), 0o644)
	os.Symlink("a.txt", filepath.Join(src, "link"))
	dockerOK(t, "run", "-d", "--name", "cpc", "busybox", "sh", "-c", "ln -s / /tmp/rootlink; sleep 600")
	defer docker(t, "", "rm", "-f", "cpc")
	dockerOK(t, "cp", src, "cpc:/tmp/")
	dockerOK(t, "cp", filepath.Join(src, "a.txt"), "cpc:/tmp/renamed.txt")
	if out := dockerOK(t, "exec", "cpc", "sh", "-c", "cat /tmp/in/a.txt /tmp/in/sub/b.txt /tmp/renamed.txt; readlink /tmp/in/link; stat -c %a /tmp/in/a.txt"); out != "one\ntwo\none\na.txt\n640\n" {
		t.Errorf("files copied in = %q", out)
	}
	out := filepath.Join(t.TempDir(), "out")
	dockerOK(t, "cp", "cpc:/tmp/in", out)
	if b, err := os.ReadFile(filepath.Join(out, "sub", "b.txt")); err != nil || string(b) != "two\n" {
		t.Errorf("copied out: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(out, "link")); err != nil || l != "a.txt" {
		t.Errorf("symlink copied out: %q %v", l, err)
	}
	// Through the container's symlink to / the file lands in the
	// container's root, never the host's.
	marker := fmt.Sprintf("skiff-cp-escape-%d", time.Now().UnixNano())
	os.WriteFile(filepath.Join(t.TempDir(), marker), nil, 0o644)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, marker), []byte("inside\n"), 0o644)
	dockerOK(t, "cp", filepath.Join(dir, marker), "cpc:/tmp/rootlink/")
	if _, err := os.Stat("/" + marker); err == nil {
		os.Remove("/" + marker)
		t.Fatalf("docker cp through a symlink wrote /%s on the host", marker)
	}
	if out := dockerOK(t, "exec", "cpc", "cat", "/"+marker); out != "inside\n" {
		t.Errorf("file copied through the symlink = %q", out)
	}
	if r := docker(t, "", "cp", "cpc:/nope", "-"); r.Code != 1 || !strings.Contains(r.Stderr, "Could not find the file /nope") {
		t.Errorf("docker cp of a missing file: %s", r)
	}
	// A stopped container's files.
	dockerOK(t, "stop", "-t", "0", "cpc")
	dockerOK(t, "cp", filepath.Join(src, "a.txt"), "cpc:/stopped.txt")
	r := docker(t, "", "cp", "cpc:/stopped.txt", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, "one\n") || !strings.Contains(r.Stdout, "stopped.txt") {
		t.Errorf("docker cp out of a stopped container: %s", r)
	}
}
