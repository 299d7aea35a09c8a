package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dimg is the daemon serving the Docker API for the image, network and
// volume tests: its own root, the busybox and hello images, and the
// privileged admission profile (Docker clients set capabilities).
var dimg struct {
	once   sync.Once
	d      *Daemon
	socket string // the Docker API socket
	err    error
}

// dimgDaemon starts (once) the Docker API daemon of these tests.
func dimgDaemon(t *testing.T) *Daemon {
	t.Helper()
	dimg.once.Do(func() {
		dimg.socket = filepath.Join(env.tmp, "dimg-docker.sock")
		d := &Daemon{
			Name:   "dimg",
			Root:   filepath.Join(env.tmp, "root-dimg"),
			Socket: filepath.Join(env.tmp, "dimg.sock"),
			Log:    filepath.Join(env.tmp, "dimg.log"),
			Args:   []string{"--docker-socket", dimg.socket, "--security-profile", "privileged"},
		}
		extraDaemons = append(extraDaemons, d)
		if dimg.err = d.Start(); dimg.err == nil {
			dimg.err = buildSubset(d, "busybox", "hello")
		}
		dimg.d = d
	})
	if dimg.err != nil {
		t.Fatal(dimg.err)
	}
	return dimg.d
}

// dockerCmd is a docker CLI run against the dimg daemon's Docker API,
// with its own client config directory.
type dockerCmd struct {
	t      *testing.T
	config string // DOCKER_CONFIG
	env    []string
	dir    string
}

func newDockerCmd(t *testing.T) *dockerCmd {
	dimgDaemon(t)
	return &dockerCmd{t: t, config: t.TempDir(), env: []string{"DOCKER_BUILDKIT=0"}}
}

// run runs docker with args (and stdin), bounded to 3 minutes.
func (c *dockerCmd) run(stdin string, args ...string) Result {
	return runTool(c.dir, append([]string{"DOCKER_HOST=unix://" + dimg.socket, "DOCKER_CONFIG=" + c.config}, c.env...), stdin, "docker", args...)
}

// must runs docker and fails the test unless it exits 0.
func (c *dockerCmd) must(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.Code != 0 {
		c.t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// runTool runs a client program with extra environment in dir, bounded
// to 3 minutes.
func runTool(dir string, extraEnv []string, stdin, prog string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	// A client may leave a child holding its output open (devcontainer up
	// leaves the attached docker run): do not wait for it after the exit.
	cmd.WaitDelay = 5 * time.Second
	var out, errb strings.Builder
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

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDockerImageBuildSaveLoad: docker build (the classic builder's
// stream) with build args, labels and a target, then images --filter,
// inspect, history, tag, a run of the image through skiff's own CLI,
// save | rmi | load round trip, podman load of the saved archive, and a
// failing build's error.
func TestDockerImageBuildSaveLoad(t *testing.T) {
	d := dimgDaemon(t)
	c := newDockerCmd(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{
		"Dockerfile": "FROM busybox AS base\nARG GREETING=none\nRUN echo built-$GREETING > /greeting\n" +
			"FROM base AS final\nCOPY note.txt /note.txt\nCMD [\"cat\", \"/greeting\", \"/note.txt\"]\n" +
			"FROM base AS other\nRUN false\n",
		"note.txt": "from-the-context\n",
	})
	out := c.must("build", "-t", "dimg/app:1", "--build-arg", "GREETING=hi", "--label", "team=web", "--target", "final", ctxDir)
	for _, want := range []string{"Step 1/3 : FROM busybox", "Successfully built ", "Successfully tagged dimg/app:1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("docker build output lacks %q:\n%s", want, out)
		}
	}

	id := strings.TrimSpace(c.must("images", "-q", "--filter", "label=team=web"))
	if len(id) != 12 {
		t.Fatalf("images --filter label: %q", id)
	}
	if got := c.must("images", "--filter", "reference=dimg/*", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); strings.TrimSpace(got) != "localhost/dimg/app:1 "+id {
		t.Fatalf("images --filter reference: %q", got)
	}
	if got := c.must("image", "inspect", "--format", `{{index .Config.Labels "team"}} {{.Os}}`, "dimg/app:1"); got != "web linux\n" {
		t.Fatalf("image inspect: %q", got)
	}
	if got := c.must("history", "--no-trunc", "dimg/app:1"); !strings.Contains(got, "note.txt") || !strings.Contains(got, id) {
		t.Fatalf("history:\n%s", got)
	}
	c.must("tag", "dimg/app:1", "dimg/app:2")
	if got := c.must("images", "--format", "{{.Tag}}", "dimg/app"); !strings.Contains(got, "1\n") || !strings.Contains(got, "2\n") {
		t.Fatalf("images after tag: %q", got)
	}
	if got := must(t, d, "run", "--rm", "dimg/app:2"); got != "built-hi\nfrom-the-context\n" {
		t.Fatalf("skiff run of the image docker built: %q", got)
	}

	tarPath := filepath.Join(t.TempDir(), "app.tar")
	c.must("save", "-o", tarPath, "dimg/app:1")
	if got := c.must("rmi", "dimg/app:1", "dimg/app:2"); !strings.Contains(got, "Untagged: localhost/dimg/app:1") || !strings.Contains(got, "Deleted: sha256:"+id) {
		t.Fatalf("rmi: %q", got)
	}
	if r := c.run("", "image", "inspect", "dimg/app:1"); r.Code == 0 {
		t.Fatalf("the image is still there after rmi: %s", r)
	}
	if got := c.must("load", "-i", tarPath); !strings.Contains(got, "Loaded image: localhost/dimg/app:1") {
		t.Fatalf("load: %q", got)
	}
	if got := must(t, d, "run", "--rm", "dimg/app:1"); got != "built-hi\nfrom-the-context\n" {
		t.Fatalf("skiff run after save | load: %q", got)
	}
	// The archive is one podman reads too.
	proot, err := os.MkdirTemp("", "pl-") // podman wants a short runroot
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(proot)
	r := runTool("", nil, "", "podman", "--root", filepath.Join(proot, "root"), "--runroot", filepath.Join(proot, "run"),
		"--storage-driver", "vfs", "load", "-i", tarPath)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Loaded image") || !strings.Contains(r.Stdout, "dimg/app:1") {
		t.Fatalf("podman load of docker save's archive: %s", r)
	}

	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 7\n"})
	r = c.run("", "build", "-t", "dimg/bad", bad)
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "exit") {
		t.Fatalf("a failing build: %s", r)
	}
	if r := c.run("", "image", "inspect", "dimg/bad"); r.Code == 0 {
		t.Fatalf("a failed build left an image: %s", r)
	}
}

// TestDockerImagePushPull: docker push to a skiff registry with the
// credentials of the client's config (sent as X-Registry-Auth), rmi,
// then docker pull of it back.
func TestDockerImagePushPull(t *testing.T) {
	d := dimgDaemon(t)
	_, addr := registry(t)
	c := newDockerCmd(t)
	auth := base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass))
	writeFiles(t, c.config, map[string]string{"config.json": fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, addr, auth)})
	ref := addr + "/dimg/hello:1"
	c.must("tag", "hello", ref)
	out := c.must("push", ref)
	if !strings.Contains(out, "The push refers to repository ["+addr+"/dimg/hello]") || !strings.Contains(out, "1: digest: sha256:") {
		t.Fatalf("push: %q", out)
	}
	c.must("rmi", ref)
	out = c.must("pull", ref)
	if !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Fatalf("pull: %q", out)
	}
	if got := must(t, d, "run", "--rm", ref, "-print", "pulled-back"); got != "pulled-back\n" {
		t.Fatalf("run of the pulled image: %q", got)
	}
	// Without credentials the registry refuses the push, and docker says so.
	anon := newDockerCmd(t)
	if r := anon.run("", "push", ref); r.Code == 0 || !strings.Contains(strings.ToLower(r.Stdout+r.Stderr), "unauthorized") {
		t.Fatalf("anonymous push: %s", r)
	}
}

// TestDockerNetworksVolumesDF: docker network create/ls/inspect/rm and
// prune, docker volume create/ls/inspect/rm/prune, docker system df.
func TestDockerNetworksVolumesDF(t *testing.T) {
	c := newDockerCmd(t)
	c.must("network", "create", "--internal", "--label", "team=web", "--subnet", "10.123.7.0/24", "dimgnet")
	if got := c.must("network", "ls", "--filter", "label=team=web", "--format", "{{.Name}} {{.Driver}}"); got != "dimgnet bridge\n" {
		t.Fatalf("network ls --filter: %q", got)
	}
	if got := c.must("network", "inspect", "--format", "{{.Internal}} {{(index .IPAM.Config 0).Subnet}}", "dimgnet"); got != "true 10.123.7.0/24\n" {
		t.Fatalf("network inspect: %q", got)
	}
	if r := c.run("", "network", "create", "--driver", "overlay", "dimgover"); r.Code == 0 || !strings.Contains(r.Stderr, "overlay") {
		t.Fatalf("network create --driver overlay: %s", r)
	}
	c.must("network", "rm", "dimgnet")
	if r := c.run("", "network", "inspect", "dimgnet"); r.Code == 0 {
		t.Fatalf("network inspect after rm: %s", r)
	}
	c.must("network", "create", "dimgspare")
	if got := c.must("network", "prune", "-f"); !strings.Contains(got, "dimgspare") {
		t.Fatalf("network prune: %q", got)
	}

	c.must("volume", "create", "--label", "app=db", "dimgvol")
	if got := c.must("volume", "ls", "--filter", "label=app=db", "--format", "{{.Name}} {{.Driver}}"); got != "dimgvol local\n" {
		t.Fatalf("volume ls --filter: %q", got)
	}
	mp := strings.TrimSpace(c.must("volume", "inspect", "--format", "{{.Mountpoint}}", "dimgvol"))
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("data"), 0o644); err != nil {
		t.Fatalf("volume mountpoint %q: %v", mp, err)
	}
	anon := strings.TrimSpace(c.must("volume", "create"))
	if got := c.must("volume", "prune", "-f"); !strings.Contains(got, anon) || strings.Contains(got, "dimgvol") {
		t.Fatalf("volume prune (anonymous only): %q", got)
	}
	if got := c.must("system", "df", "--format", "{{.Type}} {{.TotalCount}}"); !strings.Contains(got, "Images ") || !strings.Contains(got, "Local Volumes 1") {
		t.Fatalf("system df: %q", got)
	}
	if got := c.must("volume", "prune", "-a", "-f"); !strings.Contains(got, "dimgvol") {
		t.Fatalf("volume prune -a: %q", got)
	}
	if got := c.must("volume", "ls", "-q"); strings.Contains(got, "dimgvol") {
		t.Fatalf("volume ls after prune -a: %q", got)
	}
}

// TestDockerComposeProject: Debian's docker-compose 1.29 brings up a
// project through the Docker API: an image it builds (through the docker
// CLI's classic build), a published port, a named volume, a project
// network where services find each other by name (run --rm of a client
// service), ps, then down -v removes containers, network and volume.
func TestDockerComposeProject(t *testing.T) {
	d := dimgDaemon(t)
	if err := buildSubset(d, "echoserver"); err != nil {
		t.Fatal(err)
	}
	c := newDockerCmd(t)
	proj := filepath.Join(t.TempDir(), "dimgc")
	port := freePort(t)
	writeFiles(t, proj, map[string]string{
		"docker-compose.yml": fmt.Sprintf(`services:
  api:
    image: echoserver
  web:
    build: ./web
    image: localhost/dimgc-web:1
    ports:
      - "127.0.0.1:%d:8080"
    volumes:
      - data:/data
    depends_on: [api]
  probe:
    image: hello
    command: ["-get", "http://api:8080/found-by-name"]
    profiles: [tools]
volumes:
  data:
`, port),
		"web/Dockerfile": "FROM busybox\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
		"web/index.html": "built-by-compose\n",
	})
	compose := func(args ...string) Result {
		return runTool(proj, []string{"DOCKER_HOST=unix://" + dimg.socket, "DOCKER_CONFIG=" + c.config, "DOCKER_BUILDKIT=0"}, "", "docker-compose", args...)
	}
	t.Cleanup(func() { compose("down", "-v") })
	if r := compose("up", "-d"); r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "Successfully tagged localhost/dimgc-web:1") {
		t.Fatalf("docker-compose up -d: %s", r)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "built-by-compose\n" {
		t.Fatalf("the web service answers %q", body)
	}
	if got := must(t, d, "ps"); !strings.Contains(got, "dimgc_web_1") || !strings.Contains(got, "dimgc_api_1") {
		t.Fatalf("skiff ps does not show the compose containers:\n%s", got)
	}
	var r Result
	eventually(t, 30*time.Second, "a service to reach another by name", func() bool {
		r = compose("run", "--rm", "probe")
		return r.Code == 0 && strings.Contains(r.Stdout, "/found-by-name")
	})
	if r := compose("ps"); r.Code != 0 || !strings.Contains(r.Stdout, "dimgc_web_1") || !strings.Contains(r.Stdout, "Up") {
		t.Fatalf("docker-compose ps: %s", r)
	}
	if r := compose("down", "-v"); r.Code != 0 || !strings.Contains(r.Stderr, "Removing network dimgc_default") || !strings.Contains(r.Stderr, "Removing volume dimgc_data") {
		t.Fatalf("docker-compose down -v: %s", r)
	}
	if got := c.must("ps", "-a", "--format", "{{.Names}}"); strings.Contains(got, "dimgc_") {
		t.Fatalf("containers left after down: %q", got)
	}
	if got := c.must("volume", "ls", "-q"); strings.Contains(got, "dimgc_data") {
		t.Fatalf("volume left after down -v: %q", got)
	}
	if r := c.run("", "network", "inspect", "dimgc_default"); r.Code == 0 {
		t.Fatalf("network left after down: %s", r)
	}
}

// devcontainerCLI returns the Dev Containers CLI, installed once from the
// npm registry into a cache directory outside the repository.
func devcontainerCLI(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, ".cache/skiff-test/devcontainers")
	bin := filepath.Join(dir, "node_modules/.bin/devcontainer")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runTool(dir, nil, "", "npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "@devcontainers/cli@0.89.0"); r.Code != 0 {
		t.Fatalf("install @devcontainers/cli: %s", r)
	}
	return bin
}

// TestDockerDevcontainer: the Dev Containers CLI builds and starts
// examples/devcontainer through the Docker API (on a busybox base),
// with the workspace bind-mounted, containerEnv set and the
// postCreateCommand run; devcontainer exec runs in it.
func TestDockerDevcontainer(t *testing.T) {
	dimgDaemon(t)
	cli := devcontainerCLI(t)
	c := newDockerCmd(t)
	ws := filepath.Join(t.TempDir(), "devws")
	if out, err := runCmd("cp", "-r", filepath.Join(env.repo, "examples/devcontainer"), ws); err != nil {
		t.Fatalf("copy the example: %v\n%s", err, out)
	}
	dcEnv := []string{"DOCKER_HOST=unix://" + dimg.socket, "DOCKER_CONFIG=" + c.config, "DOCKER_BUILDKIT=0", "DEVCONTAINER_BASE=busybox"}
	r := runTool(ws, dcEnv, "", cli, "up", "--workspace-folder", ws)
	if r.Code != 0 || !strings.Contains(r.Stdout, `"outcome":"success"`) {
		t.Fatalf("devcontainer up: %s", r)
	}
	t.Cleanup(func() { c.run("", "rm", "-f", "--volumes", jsonField(r.Stdout, "containerId")) })
	if got := c.must("ps", "--filter", "label=devcontainer.local_folder="+ws, "--format", "{{.State}}"); got != "running\n" {
		t.Fatalf("the dev container is not running: %q", got)
	}
	r = runTool(ws, dcEnv, "", cli, "exec", "--workspace-folder", ws, "sh", "-c", `echo "$GREETING"; cat /tmp/post-create; ls "/workspaces/$(basename $PWD)"`)
	if r.Code != 0 || !strings.Contains(r.Stdout, "hello-from-devcontainer\npost-create-ran\n") || !strings.Contains(r.Stdout, "README.md") {
		t.Fatalf("devcontainer exec: %s", r)
	}
}

// jsonField returns the string value of "key" in a JSON line of out.
func jsonField(out, key string) string {
	_, rest, ok := strings.Cut(out, `"`+key+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// TestDockerExecStdinKeptOpen: docker exec -i ends when the process
// exits although the client keeps stdin open, as the Dev Containers CLI
// does with the commands it runs (it used to wait for stdin's EOF).
func TestDockerExecStdinKeptOpen(t *testing.T) {
	c := newDockerCmd(t)
	id := strings.TrimSpace(c.must("run", "-d", "busybox", "sleep", "300"))
	t.Cleanup(func() { c.run("", "rm", "-f", id) })
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "exec", "-i", id, "sh", "-c", "echo ran; exit 3")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dimg.socket, "DOCKER_CONFIG="+c.config)
	cmd.Stdin = pr
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	pr.Close()
	if ctx.Err() != nil {
		t.Fatalf("docker exec -i did not end with its process while stdin stayed open: %q", out.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || out.String() != "ran\n" {
		t.Fatalf("docker exec -i: %v %q", err, out.String())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("docker exec -i took %s", d)
	}
}
