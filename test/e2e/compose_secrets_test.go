package e2e

import (
	"strings"
	"testing"
)

const composeSecrets = `name: csec
services:
  app:
    image: busybox
    command: ["sleep", "1003"]
    stop_grace_period: 1s
    user: "1000:1000"
    secrets:
      - db_pw
      - source: api
        target: api_token
        mode: 0444
        uid: "2000"
        gid: "3000"
      - source: cert
        target: /etc/certs/tls.pem
      - source: filesec
        target: /opt/file_secret
secrets:
  db_pw: {external: true, name: csec-db}
  api: {external: true, name: csec-api/token}
  cert: {external: true, name: csec-cert}
  filesec: {file: ./filesec.txt}
`

const composeMissingSecret = `name: csecmiss
services:
  app:
    image: busybox
    command: ["sleep", "1004"]
    secrets: [nope]
secrets:
  nope: {external: true, name: csec-missing}
`

// TestComposeStoreSecrets: compose secrets defined external come from skiff's secret store as single files under
// /run/secrets or the target, mode 0400 owned by the container's user
// unless mode/uid/gid say otherwise; a file secret still works beside
// them; a missing store secret fails up before anything is created.
func TestComposeStoreSecrets(t *testing.T) {
	for _, s := range []string{"csec-db", "csec-api", "csec-cert"} {
		t.Cleanup(func() { skiff("secret", "rm", s) })
	}
	must(t, env.daemon, "secret", "create", "csec-db", "--from-literal", "password=pw-from-store")
	must(t, env.daemon, "secret", "create", "csec-api", "--from-literal", "token=tok-123", "--from-literal", "other=x")
	must(t, env.daemon, "secret", "create", "csec-cert", "--from-literal", "pem=CERTDATA")

	_, base := composeProject(t, map[string]string{"compose.yaml": composeSecrets, "filesec.txt": "from-file"})
	t.Cleanup(func() { skiff(append(base, "down")...) })
	out := composeRun(t, base, "up", "-d")
	if strings.Contains(out, "WARNING") {
		t.Errorf("up warns about store secrets:\n%s", out)
	}
	cat := composeRun(t, base, "exec", "app", "cat", "/run/secrets/db_pw", "/run/secrets/api_token", "/etc/certs/tls.pem", "/opt/file_secret")
	if !strings.Contains(cat, "pw-from-storetok-123CERTDATAfrom-file") {
		t.Fatalf("secret contents:\n%s", cat)
	}
	st := composeRun(t, base, "exec", "app", "stat", "-c", "%n %a %u %g", "/run/secrets/db_pw", "/run/secrets/api_token", "/etc/certs/tls.pem")
	for _, want := range []string{"/run/secrets/db_pw 400 1000 1000", "/run/secrets/api_token 444 2000 3000", "/etc/certs/tls.pem 400 1000 1000"} {
		if !strings.Contains(st, want) {
			t.Fatalf("stat lacks %q:\n%s", want, st)
		}
	}
	if ls := composeRun(t, base, "exec", "app", "ls", "/run/secrets"); strings.TrimSpace(ls) != "api_token\ndb_pw" {
		t.Fatalf("/run/secrets holds more than the picked keys:\n%s", ls)
	}

	_, miss := composeProject(t, map[string]string{"compose.yaml": composeMissingSecret})
	t.Cleanup(func() { skiff(append(miss, "down")...) })
	fails(t, env.daemon, []string{"csec-missing", "skiff secret create"}, append(miss, "up", "-d")...)
	if ps := must(t, env.daemon, "ps", "-a"); strings.Contains(ps, "csecmiss") {
		t.Fatalf("a failed up created a container:\n%s", ps)
	}
	if nets := must(t, env.daemon, "network", "ls"); strings.Contains(nets, "csecmiss") {
		t.Fatalf("a failed up created a network:\n%s", nets)
	}
}
