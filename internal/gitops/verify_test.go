package gitops

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"skiff.dev/skiff/api"
)

// fetchHead fetches the head of the repository at url.
func fetchHead(t *testing.T, url string) *object.Commit {
	t.Helper()
	spec := api.SourceSpec{Git: url}
	tgt, err := Resolve(context.Background(), spec, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	co, err := Fetch(context.Background(), spec, Credentials{}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	return co.Commit
}

func armoredPublic(t *testing.T, e *openpgp.Entity) string {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

func TestVerifyCommitGPG(t *testing.T) {
	signer, err := openpgp.NewEntity("deployer", "", "deploy@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := openpgp.NewEntity("someone", "", "someone@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	repo := newTestRepo(t)
	wt, _ := repo.r.Worktree()
	commit := func(key *openpgp.Entity, content string) *object.Commit {
		os.WriteFile(filepath.Join(repo.dir, "a.yaml"), []byte(content), 0o644)
		wt.Add("a.yaml")
		if _, err := wt.Commit("c", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}, SignKey: key}); err != nil {
			t.Fatal(err)
		}
		return fetchHead(t, repo.url())
	}
	spec := api.SourceSpec{VerifyGPGKeys: armoredPublic(t, signer)}
	if err := VerifyCommit(commit(signer, appYAML("a", "img:1")), spec); err != nil {
		t.Fatalf("a commit signed by the listed key: %v", err)
	}
	if err := VerifyCommit(commit(other, appYAML("a", "img:2")), spec); err == nil || !strings.Contains(err.Error(), "not signed by a key of --verify-gpg-keys") {
		t.Fatalf("a commit signed by another key: %v", err)
	}
	if err := VerifyCommit(commit(nil, appYAML("a", "img:3")), spec); err == nil || !strings.Contains(err.Error(), "is not signed") {
		t.Fatalf("an unsigned commit: %v", err)
	}
	if err := VerifyCommit(commit(nil, appYAML("a", "img:4")), api.SourceSpec{}); err != nil {
		t.Fatalf("without keys every commit passes: %v", err)
	}
	if err := CheckSource(api.Source{Name: "a", Spec: api.SourceSpec{Git: "file:///x", VerifyGPGKeys: "not a key"}}); err == nil {
		t.Fatal("a bad --verify-gpg-keys was accepted")
	}
}

// TestVerifyCommitSSH signs commits with git and ssh-keygen
// (gpg.format=ssh), as a developer does.
func TestVerifyCommitSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatal("ssh-keygen is not installed: run make deps-test")
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		return p
	}
	signer, other := keygen("signer"), keygen("other")
	pub, err := os.ReadFile(signer + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	gitc := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.MkdirAll(repo, 0o755)
	gitc("init", "-q", "-b", "main")
	commit := func(key, image string) *object.Commit {
		os.WriteFile(filepath.Join(repo, "a.yaml"), []byte(appYAML("a", image)), 0o644)
		gitc("add", "-A")
		if key == "" {
			gitc("commit", "-q", "-m", image)
		} else {
			gitc("-c", "gpg.format=ssh", "-c", "user.signingkey="+key, "commit", "-q", "-S", "-m", image)
		}
		return fetchHead(t, "file://"+repo)
	}
	for name, allowed := range map[string]string{
		"authorized_keys": string(pub),
		"allowed_signers": "t@example.com namespaces=\"git\" " + string(pub),
	} {
		spec := api.SourceSpec{VerifySSHKeys: "# deployers\n" + allowed}
		if err := VerifyCommit(commit(signer, "img:1-"+name), spec); err != nil {
			t.Fatalf("%s: a commit signed by the listed key: %v", name, err)
		}
	}
	spec := api.SourceSpec{VerifySSHKeys: string(pub)}
	if err := VerifyCommit(commit(other, "img:2"), spec); err == nil || !strings.Contains(err.Error(), "not among the source's --verify-ssh-keys") {
		t.Fatalf("a commit signed by another key: %v", err)
	}
	if err := VerifyCommit(commit("", "img:3"), spec); err == nil || !strings.Contains(err.Error(), "is not signed") {
		t.Fatalf("an unsigned commit: %v", err)
	}
	// A signature moved onto other content does not verify.
	c := commit(signer, "img:4")
	c.Message = "tampered\n"
	if err := VerifyCommit(c, spec); err == nil || !strings.Contains(err.Error(), "does not match the commit") {
		t.Fatalf("a tampered commit: %v", err)
	}
	if err := CheckSSHKeys("garbage\n"); err == nil {
		t.Fatal("a bad key list was accepted")
	}
}

// TestSyncRefusesUnsignedCommits: a source listing keys applies nothing
// from an unsigned commit.
func TestSyncRefusesUnsignedCommits(t *testing.T) {
	signer, err := openpgp.NewEntity("deployer", "", "deploy@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	repo := newTestRepo(t)
	repo.commit("unsigned", map[string]string{"a.yaml": appYAML("a", "img:1")})
	m, apps, _ := newTestManager(t)
	if _, err := m.Add(context.Background(), api.Source{Name: "signed", Spec: api.SourceSpec{Git: repo.url(), Interval: api.Duration{Duration: time.Hour},
		VerifyGPGKeys: armoredPublic(t, signer)}}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Sync(context.Background(), "signed")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.LastResult != api.SourceResultFailed || !strings.Contains(s.Status.LastError, "is not signed") || apps.image("a") != "" {
		t.Fatalf("an unsigned commit: result %s, error %q, image %q", s.Status.LastResult, s.Status.LastError, apps.image("a"))
	}
}
