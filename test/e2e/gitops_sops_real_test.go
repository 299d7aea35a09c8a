package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/gitops"
)

// realSOPS returns the sops command built from test/tools/sops (the
// version its go.mod pins). The binary is cached outside the repository,
// in ${SKIFF_SOPS_CACHE:-$HOME/.cache/skiff-test/sops}/VERSION/sops: sops
// links every cloud KMS SDK, and a cold build takes minutes.
func realSOPS(t *testing.T) string {
	t.Helper()
	tools := filepath.Join(env.repo, "test", "tools", "sops")
	mod, err := os.ReadFile(filepath.Join(tools, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github\.com/getsops/sops/v3 (v[0-9][^\s]*)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("test/tools/sops/go.mod pins no github.com/getsops/sops/v3")
	}
	cache := os.Getenv("SKIFF_SOPS_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "skiff-test", "sops")
	}
	bin := filepath.Join(cache, string(m[1]), "sops")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	os.MkdirAll(filepath.Dir(bin), 0o755)
	tmp := bin + ".tmp"
	build := exec.Command("go", "build", "-o", tmp, "github.com/getsops/sops/v3/cmd/sops")
	build.Dir = tools
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sops: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// sopsEncryptFile encrypts plain (YAML) with the real sops for the age
// recipient, with extra flags, and returns what sops wrote.
func sopsEncryptFile(t *testing.T, sops, recipient, plain string, flags ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(in, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--encrypt", "--age", recipient}, flags...)
	cmd := exec.Command(sops, append(args, in)...)
	cmd.Dir = dir // no .sops.yaml of the repository's applies
	cmd.Env = append(os.Environ(), "SOPS_AGE_KEY_FILE=/nonexistent")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("sops %s: %v\n%s", strings.Join(flags, " "), err, stderr)
	}
	return out
}

// sopsPlain is a document of every kind of value sops encrypts.
const sopsPlain = `# the team's settings
name: shop
replicas: 3
ratio: 0.25
debug: true
verbose: false
db:
  host: db.internal   # a line comment
  port: 5432
  options:
    sslmode: require
hosts:
  - a.example
  - b.example
users:
  - name: ann
    admin: true
  - name: bob
    admin: false
note_unencrypted: kept in clear
`

// TestGitopsSOPSRealTool encrypts documents with the real sops command
// (test/tools/sops) and checks that skiff's decoder reads back every value
// with its type, honours --encrypted-regex, --unencrypted-suffix and
// --mac-only-encrypted, and refuses a tampered file, a value moved to
// another key and a file for another key. Then a Secret encrypted by sops
// is synced through the daemon.
func TestGitopsSOPSRealTool(t *testing.T) {
	sops := realSOPS(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recipient := id.Recipient().String()
	var want map[string]any
	if err := yaml.Unmarshal([]byte(sopsPlain), &want); err != nil {
		t.Fatal(err)
	}
	decrypt := func(t *testing.T, enc []byte) (map[string]any, error) {
		t.Helper()
		doc, err := gitops.DecryptDocument("settings.yaml", enc, []age.Identity{id})
		if err != nil {
			return nil, err
		}
		var got map[string]any
		if err := doc.Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got, nil
	}

	for _, tc := range []struct {
		name  string
		flags []string
		clear []string // values sops must have left in clear
	}{
		{"every value", nil, []string{"kept in clear"}},
		{"encrypted regex", []string{"--encrypted-regex", "^(db|users)$"}, []string{"name: shop", "replicas: 3", "a.example"}},
		{"unencrypted suffix", []string{"--unencrypted-suffix", "_unencrypted"}, []string{"kept in clear"}},
		{"mac only encrypted", []string{"--encrypted-regex", "^db$", "--mac-only-encrypted"}, []string{"name: shop", "debug: true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := sopsEncryptFile(t, sops, recipient, sopsPlain, tc.flags...)
			for _, c := range tc.clear {
				if !strings.Contains(string(enc), c) {
					t.Fatalf("sops did not leave %q in clear:\n%s", c, enc)
				}
			}
			if strings.Contains(string(enc), "5432") || strings.Contains(string(enc), "require") {
				t.Fatalf("sops left db in clear:\n%s", enc)
			}
			got, err := decrypt(t, enc)
			if err != nil {
				t.Fatalf("decrypt what sops wrote: %v\n%s", err, enc)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decrypted:\n%#v\nwant:\n%#v", got, want)
			}
		})
	}

	enc := sopsEncryptFile(t, sops, recipient, sopsPlain)
	if !strings.Contains(string(enc), "#ENC[AES256_GCM") {
		t.Fatalf("sops did not encrypt the comments:\n%s", enc)
	}
	t.Run("tampered files refused", func(t *testing.T) {
		tampered := strings.Replace(string(enc), "note_unencrypted: kept in clear", "note_unencrypted: changed", 1)
		if tampered == string(enc) {
			t.Fatal("no clear value to tamper with")
		}
		if _, err := decrypt(t, []byte(tampered)); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "the mac does not match") {
			t.Fatalf("a clear value changed without sops: %v", err)
		}
		var doc yaml.Node
		yaml.Unmarshal(enc, &doc)
		root := doc.Content[0]
		var name, replicas *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			switch root.Content[i].Value {
			case "name":
				name = root.Content[i+1]
			case "replicas":
				replicas = root.Content[i+1]
			}
		}
		name.Value, replicas.Value = replicas.Value, name.Value
		moved, _ := yaml.Marshal(&doc)
		if _, err := decrypt(t, moved); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "does not open with the data key") {
			t.Fatalf("values moved between keys: %v", err)
		}
		other, _ := age.GenerateX25519Identity()
		_, err := gitops.DecryptDocument("settings.yaml", enc, []age.Identity{other})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), recipient) || !strings.Contains(err.Error(), "settings.yaml") {
			t.Fatalf("a file for another key: %v", err)
		}
	})

	t.Run("a secret sops encrypted syncs", func(t *testing.T) {
		d := env.daemon
		secret := "apiVersion: skiff.dev/v1\nkind: Secret\nmetadata: {name: sops-real}\nstringData:\n  password: from-real-sops\n  port: 5432\ndata:\n  user: YWRtaW4=\n"
		encSecret := sopsEncryptFile(t, sops, recipient, secret, "--encrypted-regex", "^(data|stringData)$")
		keyFile := filepath.Join(d.Root, "age.key")
		if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		repo := newGitRepo(t, root, "sops-real")
		repo.commit("secret", map[string]string{"db.yaml": string(encSecret)})
		t.Cleanup(func() {
			d.Run("", "source", "rm", "sops-real")
			d.Run("", "secret", "rm", "sops-real")
			os.Remove(keyFile)
		})
		out := must(t, d, "source", "add", "sops-real", "--git", "file://"+repo.dir, "--interval", "1h")
		if !strings.Contains(out, "secret/sops-real created") {
			t.Fatalf("source add:\n%s", out)
		}
		got := must(t, d, "secret", "get", "sops-real", "--reveal")
		for _, w := range []string{"from-real-sops", "5432"} {
			if !strings.Contains(got, w) {
				t.Fatalf("the secret sops encrypted does not hold %q:\n%s", w, got)
			}
		}
	})
}
