package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// appCondition returns the reason and message of App name's condition
// typ when its status is status, and ok false otherwise.
func appCondition(t *testing.T, d *Daemon, name string, typ api.ConditionType, status api.ConditionStatus) (reason, msg string, ok bool) {
	t.Helper()
	for _, c := range getApp(t, d, name).Status.Conditions {
		if c.Type == typ && c.Status == status {
			return c.Reason, c.Message, true
		}
	}
	return "", "", false
}

// TestAppFurtherNetworks: an App whose spec.network.networks names a
// network that does not exist is not ready, with a NetworkNotFound
// condition naming it, and becomes ready once the network is made; its
// replicas then answer by the App's name and the aliases on that network,
// where any container reaches them (the network is a segment of its own),
// while on the default network the isolation still refuses a plain
// container.
func TestAppFurtherNetworks(t *testing.T) {
	d := env.daemon
	const net = "e2e-appnet-seg"
	d.Run("", "network", "rm", net)
	defer d.Run("", "network", "rm", net)
	defer d.Run("", "delete", "app", "e2e-appnet")
	if r := applyYAML(t, d, isolationApp("e2e-appnet", "", "  network:\n    networks: [{name: "+net+", aliases: [web]}]\n")); r.Code != 0 {
		t.Fatal(r)
	}
	eventually(t, 30*time.Second, "a NetworkNotFound condition naming the network", func() bool {
		reason, msg, ok := appCondition(t, d, "e2e-appnet", api.ConditionReady, api.ConditionFalse)
		return ok && reason == api.ReasonNetworkNotFound && strings.Contains(msg, "network "+net+" does not exist")
	})
	if reps := replicasOf(t, d, "e2e-appnet"); len(reps) != 0 {
		t.Fatalf("replicas made without their network: %+v", reps)
	}

	must(t, d, "network", "create", net)
	eventually(t, 60*time.Second, "the App ready once its network exists", appReady(t, d, "e2e-appnet"))
	ip, id := replicaIP(t, d, "e2e-appnet")
	c := inspect(t, d, id)
	if len(c.Config.ExtraNetworks) != 1 || c.Config.ExtraNetworks[0].Network != net {
		t.Fatalf("replica's further networks: %+v", c.Config.ExtraNetworks)
	}

	for _, name := range []string{"web", "e2e-appnet"} {
		r := d.Run("", "run", "--rm", "--network", net, "busybox", "sh", "-c", probeHTTP(name))
		if got := strings.TrimSpace(r.Stdout); got != "reached" {
			t.Fatalf("a container on %s could not reach the App as %s: %q %s", net, name, got, r)
		}
	}
	if got := fromContainer(t, d, ip); got != "refused" {
		t.Fatalf("a plain container on the default network reached the App's replica at %s: %q", ip, got)
	}
}

// composeAppsProject has a db container, a web service run as an App
// that reads db by its service name, and a client container that
// depends on the App and reaches it by its service name. MARK is the web
// service's environment value.
func composeAppsProject(mark string) string {
	return `name: e2eca
services:
  db:
    image: hello
    environment: {VERSION: db-1}
    healthcheck:
      test: ["CMD", "/hello", "-get", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      retries: 30
  web:
    image: busybox
    command:
      - sh
      - -c
      - |
        mkdir -p /tmp/w
        while :; do
          { echo "web $$MARK"; printf 'GET / HTTP/1.0\r\nHost: db\r\n\r\n' | timeout 3 nc db 8080; } > /tmp/w/n && mv /tmp/w/n /tmp/w/index.html
          sleep 0.3
        done &
        exec httpd -f -p 8080 -h /tmp/w
    environment: {MARK: ` + mark + `}
    ports: ["8080"]
    volumes: [cache:/cache]
    depends_on:
      db: {condition: service_healthy}
    healthcheck:
      test: ["CMD-SHELL", "grep -q 'version db-1' /tmp/w/index.html"]
      interval: 1s
    x-skiff: {app: true}
  client:
    image: busybox
    command: ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc web 8080; exec sleep 600"]
    stop_grace_period: 1s
    depends_on: [web]
volumes:
  cache: {}
`
}

// TestComposeUpApps: compose up runs the marked service as an App on
// the project's network, its dependency as a container; the App reads
// the container by service name and is reached through the ingress at
// SERVICE.PROJECT.localhost; a container depending on it starts once it
// is ready and reaches it by service name; compose ps lists it; a
// changed service rolls a new revision, an unchanged one changes
// nothing; down -v removes the App, its volume, the containers and the
// network.
func TestComposeUpApps(t *testing.T) {
	d := env.daemon
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeAppsProject("one")})
	defer skiff(append(base, "down", "-v")...)
	out := composeRun(t, base, "up", "-d", "--wait")
	for _, want := range []string{"App e2eca-web  Created", "App e2eca-web  Ready"} {
		if !strings.Contains(out, want) {
			t.Fatalf("up printed no %q:\n%s", want, out)
		}
	}
	a := getApp(t, d, "e2eca-web")
	if a.Metadata.Labels["com.docker.compose.project"] != "e2eca" || len(a.Spec.Network.Networks) != 1 || a.Spec.Network.Networks[0].Name != "e2eca_default" {
		t.Fatalf("App labels %v, networks %+v", a.Metadata.Labels, a.Spec.Network.Networks)
	}
	if r := skiff("inspect", "e2eca-web-1"); r.Code == 0 {
		t.Fatalf("the App service also ran as a container: %s", r)
	}

	addr := ingressAddr(t, d)
	if code, body := get(t, addr, "web.e2eca.localhost", "/"); code != 200 || !strings.Contains(body, "web one") || !strings.Contains(body, "version db-1") {
		t.Fatalf("web through the ingress: %d %q", code, body)
	}
	if logs := composeRun(t, base, "logs", "client"); !strings.Contains(logs, "version db-1") {
		t.Fatalf("the client container did not reach the App by its service name once ready:\n%s", logs)
	}
	if ps := composeRun(t, base, "ps"); !strings.Contains(ps, "e2eca-web") || !strings.Contains(ps, "App ready (1/1)") || !strings.Contains(ps, "e2eca-db-1") {
		t.Fatalf("compose ps:\n%s", ps)
	}

	// Unchanged: nothing happens. Changed: a new revision serves.
	if out := composeRun(t, base, "up", "-d"); !strings.Contains(out, "App e2eca-web  Unchanged") {
		t.Fatalf("second up:\n%s", out)
	}
	if revs := must(t, d, "get", "revisions", "e2eca-web"); strings.Contains(revs, "e2eca-web-00002") {
		t.Fatalf("an unchanged up made a revision:\n%s", revs)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeAppsProject("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := composeRun(t, base, "up", "-d", "--wait"); !strings.Contains(out, "App e2eca-web  Updated") {
		t.Fatalf("up of the changed service:\n%s", out)
	}
	if st := getApp(t, d, "e2eca-web").Status; st.LatestReadyRevision != "e2eca-web-00002" {
		t.Fatalf("latest ready revision %q, want e2eca-web-00002", st.LatestReadyRevision)
	}
	eventually(t, 30*time.Second, "the new revision to serve", func() bool {
		_, body := get(t, addr, "web.e2eca.localhost", "/")
		return strings.Contains(body, "web two")
	})

	if !strings.Contains(must(t, d, "volume", "ls"), "e2eca-cache") {
		t.Fatal("the App's volume e2eca-cache was not made")
	}
	// stop names the App it leaves serving; the containers stop.
	out = composeRun(t, base, "stop", "web", "client")
	if !strings.Contains(out, "App e2eca-web  Not stopped") || !strings.Contains(out, "Container e2eca-client-1  Stopped") {
		t.Fatalf("compose stop:\n%s", out)
	}
	if _, body := get(t, addr, "web.e2eca.localhost", "/"); !strings.Contains(body, "web two") {
		t.Fatalf("the App stopped serving after compose stop: %q", body)
	}
	out = composeRun(t, base, "down", "-v")
	if !strings.Contains(out, "App e2eca-web  Removed") {
		t.Fatalf("down:\n%s", out)
	}
	if r := skiff("get", "apps", "e2eca-web"); r.Code == 0 {
		t.Fatalf("the App is still there after down: %s", r)
	}
	vols := must(t, d, "volume", "ls")
	nets := must(t, d, "network", "ls")
	ctrs := must(t, d, "ps", "-a")
	if strings.Contains(vols, "e2eca") || strings.Contains(nets, "e2eca") || strings.Contains(ctrs, "e2eca") {
		t.Fatalf("down -v left some of the project:\nvolumes:\n%s\nnetworks:\n%s\ncontainers:\n%s", vols, nets, ctrs)
	}
}

// composeRestartProject has web depending on db with restart: true; V is
// db's environment value.
func composeRestartProject(v string) string {
	return `name: e2ecr
services:
  db:
    image: busybox
    command: ["sleep", "600"]
    environment: {V: ` + v + `}
    stop_grace_period: 1s
  web:
    image: busybox
    command: ["sleep", "600"]
    stop_grace_period: 1s
    depends_on:
      db: {condition: service_started, restart: true}
`
}

// TestComposeDependsOnRestart: a dependency named with restart: true
// that up recreates restarts the dependant (not recreated itself); an
// unchanged up restarts nothing; the key is not warned about.
func TestComposeDependsOnRestart(t *testing.T) {
	d := env.daemon
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeRestartProject("1")})
	defer skiff(append(base, "down")...)
	if out := composeRun(t, base, "up", "-d"); strings.Contains(out, "restart") || strings.Contains(out, "WARNING") {
		t.Fatalf("first up warned:\n%s", out)
	}
	before := inspect(t, d, "e2ecr-web-1")
	if out := composeRun(t, base, "up", "-d"); strings.Contains(out, "Restarted") {
		t.Fatalf("an unchanged up restarted something:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeRestartProject("2")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := composeRun(t, base, "up", "-d")
	if !strings.Contains(out, "Container e2ecr-web-1  Restarted (dependency db recreated)") {
		t.Fatalf("up that recreated db did not restart web:\n%s", out)
	}
	after := inspect(t, d, "e2ecr-web-1")
	if after.ID != before.ID || !after.State.StartedAt.After(before.State.StartedAt) || after.State.Status != "running" {
		t.Fatalf("web before %s started %v, after %s started %v (%s): want the same container started again",
			before.ID, before.State.StartedAt, after.ID, after.State.StartedAt, after.State.Status)
	}
}

const composeCopiedSecrets = `name: e2ecs
services:
  app:
    image: busybox
    command: ["sleep", "1005"]
    stop_grace_period: 1s
    user: "1000:1000"
    secrets:
      - env_tok
      - source: filesec
        mode: 0440
        uid: "2000"
        gid: "50"
      - plain
secrets:
  env_tok: {environment: E2ECS_TOKEN}
  filesec: {file: ./filesec.txt}
  plain: {file: ./plain.txt}
`

// TestComposeCopiedSecrets: a secret from the environment (.env here)
// and a file secret with mode, uid and gid are kept in skiff's secret
// store as the project's and shown with that ownership, beside a plain
// file secret in the same directory; nothing is warned about; a changed
// value is a new version; down removes them from the store.
func TestComposeCopiedSecrets(t *testing.T) {
	d := env.daemon
	dir, base := composeProject(t, map[string]string{"compose.yaml": composeCopiedSecrets,
		"filesec.txt": "from-file", "plain.txt": "plain-file", ".env": "E2ECS_TOKEN=tok-env-1\n"})
	defer skiff(append(base, "down")...)
	if out := composeRun(t, base, "up", "-d"); strings.Contains(out, "WARNING") {
		t.Fatalf("up warned:\n%s", out)
	}
	cat := composeRun(t, base, "exec", "app", "cat", "/run/secrets/env_tok", "/run/secrets/filesec", "/run/secrets/plain")
	if !strings.Contains(cat, "tok-env-1from-fileplain-file") {
		t.Fatalf("secret contents:\n%s", cat)
	}
	st := composeRun(t, base, "exec", "app", "stat", "-c", "%n %a %u %g", "/run/secrets/env_tok", "/run/secrets/filesec")
	for _, want := range []string{"/run/secrets/env_tok 400 1000 1000", "/run/secrets/filesec 440 2000 50"} {
		if !strings.Contains(st, want) {
			t.Fatalf("stat lacks %q:\n%s", want, st)
		}
	}
	if ls := must(t, d, "secret", "ls"); !strings.Contains(ls, "compose.e2ecs.env-tok") || !strings.Contains(ls, "compose.e2ecs.filesec") {
		t.Fatalf("the project's secrets are not in the store:\n%s", ls)
	}

	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("E2ECS_TOKEN=tok-env-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	composeRun(t, base, "up", "-d", "--force-recreate")
	if cat := composeRun(t, base, "exec", "app", "cat", "/run/secrets/env_tok"); !strings.Contains(cat, "tok-env-2") {
		t.Fatalf("the changed value is not shown: %q", cat)
	}

	composeRun(t, base, "down")
	if ls := must(t, d, "secret", "ls"); strings.Contains(ls, "compose.e2ecs.") {
		t.Fatalf("down left the project's secrets in the store:\n%s", ls)
	}
}
