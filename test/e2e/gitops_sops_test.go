package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The secret the SOPS tests commit: internal/gitops/testdata holds it
// encrypted for the test age key beside it (see TestDecryptSecret).
const (
	sopsFixture = "../../internal/gitops/testdata/gitops-db.sops.yaml"
	sopsKey     = "../../internal/gitops/testdata/age.key"
	sopsValue   = "s3cret-from-git"
)

// TestGitopsSOPS syncs a repository holding a SOPS-encrypted secret and
// an App using it: without the daemon's age key the sync fails naming the
// file and changes nothing; with it the App serves the value, which is
// never in clear under the root; removing the file prunes the secret.
func TestGitopsSOPS(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	enc, err := os.ReadFile(sopsFixture)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(sopsKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(d.Root, "age.key")
	root := t.TempDir()
	repo := newGitRepo(t, root, "sops")
	base := serveGit(t, root)
	web := strings.Replace(gitopsApp("gitops-sops-web", "x"), `{name: VERSION, value: "x"}`, `{name: VERSION, secretRef: gitops-db/password}`, 1)
	if !strings.Contains(web, "secretRef") {
		t.Fatal("the App does not use the secret")
	}
	repo.commit("web and its secret", map[string]string{"deploy/db.sops.yaml": string(enc), "deploy/web.yaml": web})
	t.Cleanup(func() {
		d.Run("", "source", "rm", "gsops")
		d.Run("", "delete", "app", "gitops-sops-web")
		d.Run("", "secret", "rm", "gitops-db")
		os.Remove(keyFile)
	})

	os.Remove(keyFile)
	r := d.Run("", "source", "add", "gsops", "--git", base+"/sops", "--path", "deploy", "--interval", "1h")
	out := r.Stdout + r.Stderr
	if r.Code == 0 || !strings.Contains(out, "deploy/db.sops.yaml: cannot be decrypted") || !strings.Contains(out, "age1slc77xvxsdraysyt4q58lg94cusxssthwl26kdycp57k0zwnhvds6v5q2f") {
		t.Fatalf("a sync without the age key: %s", r)
	}
	if r := d.Run("", "get", "apps", "gitops-sops-web"); r.Code == 0 {
		t.Fatalf("the App was applied though its secret could not be decrypted: %s", r)
	}
	if r := d.Run("", "secret", "get", "gitops-db"); r.Code == 0 {
		t.Fatalf("the secret exists after a failed sync: %s", r)
	}

	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	out = must(t, d, "source", "sync", "gsops")
	for _, w := range []string{"secret/gitops-db created", "app/gitops-sops-web created"} {
		if !strings.Contains(out, w) {
			t.Fatalf("sync does not say %q:\n%s", w, out)
		}
	}
	serves(t, addr, "gitops-sops-web.localhost", sopsValue, time.Minute)
	if out := must(t, d, "secret", "get", "gitops-db", "--reveal"); !strings.Contains(out, sopsValue) {
		t.Fatalf("the stored secret:\n%s", out)
	}
	if out := must(t, d, "source", "sync", "gsops"); !strings.Contains(out, "secret/gitops-db unchanged") {
		t.Fatalf("a second sync of the same commit:\n%s", out)
	}

	notUnderRoot(t, d, sopsValue)

	repo.commit("no more web", map[string]string{"deploy/db.sops.yaml": "", "deploy/web.yaml": "", "deploy/README.md": "nothing deployed\n"})
	out = must(t, d, "source", "sync", "gsops")
	for _, w := range []string{"secret/gitops-db pruned", "app/gitops-sops-web pruned"} {
		if !strings.Contains(out, w) {
			t.Fatalf("sync does not say %q:\n%s", w, out)
		}
	}
	if r := d.Run("", "secret", "get", "gitops-db"); r.Code == 0 {
		t.Fatalf("the secret outlived its file: %s", r)
	}
}
