package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// TestSecrets: a secret's value reaches an App's replicas through its
// env, a new version rolls the App as a new revision, a used secret
// cannot be removed, and the values appear nowhere else: not in any file
// under the daemon's root (the database included), its log, nor in what
// the API says of the secret, the App, its revisions, replicas and events.
func TestSecrets(t *testing.T) {
	d, err := startDaemon("secrets")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	rnd := make([]byte, 8)
	rand.Read(rnd)
	canary := "cnry" + hex.EncodeToString(rnd)
	v1, v2, fileVal, envVal := canary+"one", canary+"two", canary+"file", canary+"env"
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "cert"), []byte(fileVal), 0o600)
	os.WriteFile(filepath.Join(tmp, "app.env"), []byte("# comment\nTOKEN="+envVal+"\n"), 0o600)

	if st, err := os.Stat(filepath.Join(d.Root, "secrets.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	out := must(t, d, "secret", "create", "db", "--from-literal", "version="+v1,
		"--from-file", "cert="+filepath.Join(tmp, "cert"), "--from-env-file", filepath.Join(tmp, "app.env"))
	if !strings.Contains(out, "secret db version 1 (cert, token, version)") && !strings.Contains(out, "secret db version 1 (TOKEN, cert, version)") {
		t.Fatalf("create: %s", out)
	}
	fails(t, d, []string{"secret db exists already"}, "secret", "create", "db", "--from-literal", "a=b")
	fails(t, d, []string{"secret name", "not valid"}, "secret", "create", "Bad_Name", "--from-literal", "a=b")
	fails(t, d, []string{"no content"}, "secret", "create", "empty")

	reveal := must(t, d, "secret", "get", "db", "--reveal")
	for _, want := range []string{"version=" + v1, "cert=" + fileVal, "TOKEN=" + envVal} {
		if !strings.Contains(reveal, want) {
			t.Fatalf("get --reveal lacks %q:\n%s", want, reveal)
		}
	}
	var said []string // what the API says, checked for the canary at the end
	said = append(said, must(t, d, "secret", "get", "db"), must(t, d, "secret", "ls"), must(t, d, "secret", "ls", "-o", "json"))

	applyYAML(t, d, `apiVersion: skiff.dev/v1
kind: App
metadata: {name: vault}
spec:
  image: hello
  env: [{name: VERSION, secretRef: db/version}, {name: TOKEN, secretRef: db/TOKEN}]
  probes:
    readiness: {http: /healthz, period: 200ms}
`)
	eventually(t, 30*time.Second, "vault ready", appReady(t, d, "vault"))
	addr := ingressAddr(t, d)
	if code, body := get(t, addr, "vault.localhost", "/"); code != 200 || !strings.Contains(body, "version "+v1) {
		t.Fatalf("the replica does not see the secret: %d %s", code, body)
	}

	r := fails(t, d, []string{"secret db is used by app vault"}, "secret", "rm", "db")
	said = append(said, r.Stdout+r.Stderr)

	out = must(t, d, "secret", "set", "db", "--from-literal", "version="+v2, "--from-literal", "TOKEN="+envVal)
	if !strings.Contains(out, "version 2") {
		t.Fatalf("set: %s", out)
	}
	eventually(t, 30*time.Second, "the new version to serve", func() bool {
		_, body := get(t, addr, "vault.localhost", "/")
		return strings.Contains(body, "version "+v2)
	})
	eventually(t, 30*time.Second, "vault ready after the rollout", appReady(t, d, "vault"))
	var revs []api.Revision
	revJSON := must(t, d, "get", "revisions", "vault", "-o", "json")
	if err := json.Unmarshal([]byte(revJSON), &revs); err != nil {
		t.Fatalf("%v: %s", err, revJSON)
	}
	if len(revs) != 2 || revs[0].Spec.SecretVersions["db"] != 1 || revs[1].Spec.SecretVersions["db"] != 2 {
		t.Fatalf("revisions after secret set: %s", revJSON)
	}
	ins := must(t, d, "secret", "inspect", "db")
	if !strings.Contains(ins, `"usedBy"`) || !strings.Contains(ins, "vault") || strings.Count(ins, `"version":`) < 3 {
		t.Fatalf("inspect: %s", ins)
	}
	said = append(said, ins, revJSON, must(t, d, "get", "apps", "vault", "-o", "json"), must(t, d, "describe", "app", "vault"),
		must(t, d, "get", "replicas", "vault", "-o", "json"), must(t, d, "events", "-o", "json"), must(t, d, "events", "vault"),
		must(t, d, "ps", "-a"), must(t, d, "logs", "vault"))
	for _, id := range strings.Fields(must(t, d, "ps", "-aq")) {
		said = append(said, must(t, d, "inspect", id))
	}
	for i, s := range said {
		if strings.Contains(s, canary) {
			t.Errorf("API output %d holds a secret value:\n%s", i, s)
		}
	}
	if b, _ := os.ReadFile(d.Log); bytes.Contains(b, []byte(canary)) {
		t.Errorf("the daemon log holds a secret value")
	}
	notUnderRoot(t, d, canary)

	// rotate-key: a new key file, which a restarted daemon opens.
	oldKey, _ := os.ReadFile(filepath.Join(d.Root, "secrets.key"))
	must(t, d, "secret", "rotate-key")
	newKey, _ := os.ReadFile(filepath.Join(d.Root, "secrets.key"))
	if len(newKey) != 32 || bytes.Equal(oldKey, newKey) {
		t.Fatal("rotate-key did not replace the key file")
	}
	d.Stop()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if out := must(t, d, "secret", "get", "db", "--reveal"); !strings.Contains(out, "version="+v2) {
		t.Fatalf("after rotate-key and a restart: %s", out)
	}

	must(t, d, "delete", "app", "vault")
	eventually(t, 30*time.Second, "vault's replicas to go", func() bool {
		return !strings.Contains(must(t, d, "ps", "-a"), "vault-0000")
	})
	must(t, d, "secret", "rm", "db")
	fails(t, d, []string{"secret db does not exist"}, "secret", "get", "db")
}

// notUnderRoot fails t if any regular file under d's state root holds
// value in clear (and if too few files were read for that to mean much).
func notUnderRoot(t *testing.T, d *Daemon, value string) {
	t.Helper()
	files := 0
	filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		files++
		if bytes.Contains(b, []byte(value)) {
			t.Errorf("%s holds a secret value in clear", p)
		}
		return nil
	})
	if files < 10 {
		t.Fatalf("only %d files under the root were read", files)
	}
}
