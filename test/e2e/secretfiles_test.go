package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func secretFilesApp(name string) string {
	return `apiVersion: skiff.dev/v1
kind: App
metadata: {name: ` + name + `}
spec:
  image: busybox
  command: [httpd, -f, -p, "8080", -h, /tmp]
  security: {runAsUser: 1000}
  probes:
    readiness: {tcp: 8080, period: 200ms}
  volumes:
    - {name: creds, mountPath: /run/secrets/db, secret: {name: db}}
    - {name: pw, mountPath: /etc/pw, secret: {name: db, items: [{key: password, path: pass}]}}
`
}

// execIn runs a shell command in app's first replica and returns its
// output.
func execIn(t *testing.T, d *Daemon, app, cmd string) string {
	t.Helper()
	_, id := replicaIP(t, d, app)
	r := d.Run("", "exec", id, "sh", "-c", cmd)
	if r.Code != 0 {
		t.Fatalf("exec %q in %s: %s", cmd, app, r)
	}
	return r.Stdout
}

// TestAppSecretFiles: a secret volume shows the secret's keys (or the
// items chosen) as files on a tmpfs, of mode 0400 owned by the App's user,
// who can read them; a new version of the secret rolls the App out to a
// new revision with the new value; the value is never in clear in a file
// under the state root or in the daemon's log.
func TestAppSecretFiles(t *testing.T) {
	d, err := startDaemon("secretfiles")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "busybox"); err != nil {
		t.Fatal(err)
	}
	rnd := make([]byte, 8)
	rand.Read(rnd)
	canary := "cnry" + hex.EncodeToString(rnd)
	must(t, d, "secret", "create", "db", "--from-literal", "password="+canary+"one", "--from-literal", "user=admin")
	if r := applyYAML(t, d, secretFilesApp("files")); r.Code != 0 {
		t.Fatal(r)
	}
	eventually(t, 60*time.Second, "files ready", appReady(t, d, "files"))

	out := execIn(t, d, "files", "id -u; cat /run/secrets/db/password; echo; cat /run/secrets/db/user; echo; ls /etc/pw; cat /etc/pw/pass; echo; "+
		"stat -c '%a %u %n' /run/secrets/db/password /run/secrets/db/user /etc/pw/pass; grep -E ' /(run/secrets/db|etc/pw) ' /proc/mounts | cut -d' ' -f1-3")
	for _, want := range []string{
		"1000\n" + canary + "one\nadmin\npass\n" + canary + "one\n",
		"400 1000 /run/secrets/db/password\n400 1000 /run/secrets/db/user\n400 1000 /etc/pw/pass\n",
		"tmpfs /run/secrets/db tmpfs\ntmpfs /etc/pw tmpfs\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in the replica's view:\n%s", want, out)
		}
	}
	if r := fails(t, d, []string{"secret db is used by app files"}, "secret", "rm", "db"); strings.Contains(r.Stdout+r.Stderr, canary) {
		t.Fatal("the refusal shows the value")
	}

	// A new version rolls the App out with the new value.
	must(t, d, "secret", "set", "db", "--from-literal", "password="+canary+"two", "--from-literal", "user=admin")
	eventually(t, 60*time.Second, "the new value in a replica", func() bool {
		var reps []api.Replica
		json.Unmarshal([]byte(d.Run("", "get", "replicas", "files", "-o", "json").Stdout), &reps)
		for _, rep := range reps {
			if r := d.Run("", "exec", rep.ContainerID, "cat", "/etc/pw/pass"); r.Code == 0 && r.Stdout == canary+"two" {
				return true
			}
		}
		return false
	})
	var revs []api.Revision
	if err := json.Unmarshal([]byte(must(t, d, "get", "revisions", "files", "-o", "json")), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || revs[0].Spec.SecretVersions["db"] != 1 || revs[1].Spec.SecretVersions["db"] != 2 {
		t.Fatalf("revisions: %+v", revs)
	}

	if b, _ := os.ReadFile(d.Log); bytes.Contains(b, []byte(canary)) {
		t.Error("the daemon log holds a secret value")
	}
	notUnderRoot(t, d, canary)
	must(t, d, "delete", "app", "files")
}
