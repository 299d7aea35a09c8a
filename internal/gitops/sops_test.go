package gitops

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api/errdefs"
)

var updateFixtures = flag.Bool("update", false, "rewrite testdata/*.sops.yaml")

// sopsEncrypt encrypts a cleartext document as sops --encrypt --age
// RECIPIENT --encrypted-regex RE does: values under a key matching re
// get AES-256-GCM with a 32-byte iv and their key path as additional
// data; the MAC is a SHA-512 over every value's cleartext in order.
func sopsEncrypt(t *testing.T, plain string, recipient string, re string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(plain), &doc); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	h := sha512.New()
	var walk func(n *yaml.Node, path []string, enc bool)
	walk = func(n *yaml.Node, path []string, enc bool) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				walk(n.Content[i+1], append(path, k), enc || regexp.MustCompile(re).MatchString(k))
			}
		case yaml.ScalarNode:
			h.Write([]byte(n.Value))
			if enc {
				n.Value, n.Style = encryptValue(t, key, n.Value, strings.Join(path, ":")+":"), 0
			}
		}
	}
	walk(doc.Content[0], nil, false)
	const lastModified = "2026-12-01T10:00:00Z"
	mac := encryptValue(t, key, fmt.Sprintf("%X", h.Sum(nil)), lastModified)
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	aw := armor.NewWriter(&sealed)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(key)
	w.Close()
	aw.Close()
	meta := map[string]any{
		"age":             []map[string]string{{"recipient": recipient, "enc": sealed.String()}},
		"lastmodified":    lastModified,
		"mac":             mac,
		"encrypted_regex": re,
		"version":         "3.9.4",
	}
	var mn yaml.Node
	if err := mn.Encode(meta); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "sops"}, &mn)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func encryptValue(t *testing.T, key []byte, v, aad string) string {
	block, _ := aes.NewCipher(key)
	gcm, err := cipher.NewGCMWithNonceSize(block, 32)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, 32)
	rand.Read(iv)
	sealed := gcm.Seal(nil, iv, []byte(v), []byte(aad))
	data, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:str]", b(data), b(iv), b(tag))
}

const dbSecret = `apiVersion: skiff.dev/v1
kind: Secret
metadata:
  name: db
stringData:
  password: s3cret-from-git
data:
  user: YWRtaW4=
`

func testIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	b, err := os.ReadFile("testdata/age.key")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return ids[0].(*age.X25519Identity)
}

func TestDecryptSecret(t *testing.T) {
	id := testIdentity(t)
	if *updateFixtures {
		os.WriteFile("testdata/db.sops.yaml", sopsEncrypt(t, dbSecret, id.Recipient().String(), "^(data|stringData)$"), 0o644)
		// The end-to-end tests' secret (test/e2e/gitops_sops_test.go).
		e2e := strings.Replace(dbSecret, "name: db", "name: gitops-db", 1)
		os.WriteFile("testdata/gitops-db.sops.yaml", sopsEncrypt(t, e2e, id.Recipient().String(), "^(data|stringData)$"), 0o644)
	}
	fixture, err := os.ReadFile("testdata/db.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(fixture, []byte("s3cret-from-git")) {
		t.Fatal("the fixture holds the value in clear")
	}
	other, _ := age.GenerateX25519Identity()
	for _, c := range []struct {
		name string
		data []byte
		ids  []age.Identity
		want string // error text; "" for success
	}{
		{"fixture", fixture, []age.Identity{id}, ""},
		{"fresh", sopsEncrypt(t, dbSecret, id.Recipient().String(), "^(data|stringData)$"), []age.Identity{other, id}, ""},
		{"wrong key", fixture, []age.Identity{other}, "the age key for " + id.Recipient().String() + " is missing"},
		{"no key", fixture, nil, "the daemon holds no age key"},
		{"tampered value", tamper(t, fixture, "password"), []age.Identity{id}, "value stringData.password: it does not open"},
		{"tampered clear field", bytes.Replace(fixture, []byte("name: db"), []byte("name: dc"), 1), []age.Identity{id}, "the mac does not match"},
		{"value moved", swap(t, fixture), []age.Identity{id}, "does not open"},
		{"cleartext", []byte(dbSecret), []age.Identity{id}, "not encrypted with sops"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, data, err := Decrypt(SecretFile{Name: "deploy/db.yaml", Data: c.data}, c.ids)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "deploy/db.yaml: ") || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err = %v, want one naming deploy/db.yaml and %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != "db" || string(data["password"]) != "s3cret-from-git" || string(data["user"]) != "admin" || len(data) != 2 {
				t.Fatalf("got %s %q", name, data)
			}
		})
	}
}

// tamper flips a bit of key's encrypted data.
func tamper(t *testing.T, doc []byte, key string) []byte {
	re := regexp.MustCompile(key + `: ENC\[AES256_GCM,data:([A-Za-z0-9+/=]+)`)
	m := re.FindSubmatchIndex(doc)
	if m == nil {
		t.Fatalf("no %s in the fixture", key)
	}
	out := bytes.Clone(doc)
	if out[m[2]] == 'A' {
		out[m[2]] = 'B'
	} else {
		out[m[2]] = 'A'
	}
	return out
}

// swap exchanges the encrypted values of password and user.
func swap(t *testing.T, doc []byte) []byte {
	re := regexp.MustCompile(`(?m)^(\s+)(password|user): (ENC\[.*\])$`)
	ms := re.FindAllSubmatch(doc, -1)
	if len(ms) != 2 {
		t.Fatalf("want 2 encrypted values, got %d", len(ms))
	}
	out := bytes.Replace(doc, ms[0][3], []byte("@@0"), 1)
	out = bytes.Replace(out, ms[1][3], ms[0][3], 1)
	return bytes.Replace(out, []byte("@@0"), ms[1][3], 1)
}
