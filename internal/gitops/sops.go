package gitops

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// SecretKind is the kind of Secret documents in a source, and of the
// source objects that stand for the secrets applied from them.
const SecretKind = "Secret"

// SecretFile is a Secret document of a commit, still encrypted: its file
// name and content. Decrypt turns it into a secret's name and values.
type SecretFile struct {
	Name string
	Data []byte
}

// macOnlyEncryptedInit starts the MAC of a file encrypted with
// --mac-only-encrypted: sops's fixed 32 bytes, so that such a MAC never
// equals the MAC over every value.
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
	0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// encRE matches one value SOPS encrypted with AES-256-GCM.
var encRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:(str|int|float|bool|bytes|time|comment)\]$`)

// sopsMeta is the part of a SOPS file's "sops" block this package reads.
type sopsMeta struct {
	Age []struct {
		Recipient string `yaml:"recipient"`
		Enc       string `yaml:"enc"`
	} `yaml:"age"`
	KeyGroups        []yaml.Node `yaml:"key_groups"`
	LastModified     string      `yaml:"lastmodified"`
	MAC              string      `yaml:"mac"`
	MACOnlyEncrypted bool        `yaml:"mac_only_encrypted"`
}

// Decrypt decrypts a SOPS-encrypted Secret document (YAML, as sops
// writes it) with the age identities and returns the secret's name and
// values: data values are base64, stringData values are text. It checks
// the file's MAC, so a value changed or removed without the data key
// fails. Errors (ErrInvalid) name the file and, when no identity opens
// the data key, the recipients the file was encrypted for.
func Decrypt(f SecretFile, ids []age.Identity) (string, map[string][]byte, error) {
	doc, err := DecryptDocument(f.Name, f.Data, ids)
	if err != nil {
		return "", nil, err
	}
	return secretOf(f.Name, doc.Content)
}

// DecryptDocument decrypts a SOPS-encrypted YAML document with the age
// identities and returns its mapping without the sops block, each value
// decrypted with its type (str, int, float, bool) as sops recorded it. It
// checks the MAC as Decrypt does; errors are ErrInvalid and name the file.
func DecryptDocument(name string, data []byte, ids []age.Identity) (*yaml.Node, error) {
	fail := func(format string, a ...any) error {
		return errdefs.Invalid("%s: %s", name, fmt.Sprintf(format, a...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fail("not YAML: %v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fail("a sops file holds one mapping document")
	}
	root := doc.Content[0]
	var meta sopsMeta
	tree := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} // the document without its sops block
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "sops" {
			if err := root.Content[i+1].Decode(&meta); err != nil {
				return nil, fail("the sops block: %v", err)
			}
			continue
		}
		tree.Content = append(tree.Content, root.Content[i], root.Content[i+1])
	}
	if meta.MAC == "" || meta.LastModified == "" {
		return nil, fail("not encrypted with sops (no sops block with mac and lastmodified): secrets in git must be encrypted, with sops --encrypt --age RECIPIENT")
	}
	if len(meta.KeyGroups) > 0 {
		return nil, fail("sops key groups (shamir_threshold) are not supported: encrypt for age recipients only")
	}
	key, err := dataKey(meta, ids)
	if err != nil {
		return nil, fail("%v", err)
	}
	h := sha512.New()
	if meta.MACOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	if err := decryptTree(tree, nil, key, meta.MACOnlyEncrypted, h); err != nil {
		return nil, fail("%v", err)
	}
	mac, err := decryptValue(meta.MAC, key, meta.LastModified)
	if err != nil {
		return nil, fail("the mac cannot be decrypted: %v", err)
	}
	if want := fmt.Sprintf("%X", h.Sum(nil)); !bytes.Equal(mac, []byte(want)) {
		return nil, fail("the mac does not match the values: the file was changed without sops; encrypt it again with sops")
	}
	return tree, nil
}

// dataKey opens the file's data key with the first identity that can.
func dataKey(meta sopsMeta, ids []age.Identity) ([]byte, error) {
	if len(meta.Age) == 0 {
		return nil, errors.New("encrypted for no age recipient: skiff decrypts files encrypted with sops --age")
	}
	var recips []string
	for _, r := range meta.Age {
		recips = append(recips, r.Recipient)
		if len(ids) == 0 {
			continue
		}
		rd, err := age.Decrypt(armor.NewReader(strings.NewReader(r.Enc)), ids...)
		if err != nil {
			continue
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rd); err != nil {
			return nil, fmt.Errorf("read the data key for %s: %w", r.Recipient, err)
		}
		if buf.Len() != 32 {
			return nil, fmt.Errorf("the data key for %s is %d bytes, not 32", r.Recipient, buf.Len())
		}
		return buf.Bytes(), nil
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("cannot be decrypted: the daemon holds no age key; it is encrypted for %s: put the matching AGE-SECRET-KEY-1... identity in the daemon's age key file", strings.Join(recips, ", "))
	}
	return nil, fmt.Errorf("cannot be decrypted: the age key for %s is missing (the daemon's age keys match none of them): add the matching identity to the daemon's age key file, or encrypt the file for the daemon's recipient", strings.Join(recips, ", "))
}

// decryptTree decrypts n's values in place, in document order, writing
// each value's cleartext into the MAC hash as sops does. path is the keys
// down to n.
func decryptTree(n *yaml.Node, path []string, key []byte, macOnlyEncrypted bool, h interface{ Write([]byte) (int, error) }) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := decryptTree(n.Content[i+1], append(path, n.Content[i].Value), key, macOnlyEncrypted, h); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := decryptTree(c, path, key, macOnlyEncrypted, h); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !encRE.MatchString(n.Value) {
			if !macOnlyEncrypted {
				h.Write(plainBytes(n))
			}
			return nil
		}
		typ := encRE.FindStringSubmatch(n.Value)[4]
		v, err := decryptValue(n.Value, key, strings.Join(path, ":")+":")
		if err != nil {
			return fmt.Errorf("value %s: %w", strings.Join(path, "."), err)
		}
		h.Write(v)
		n.Value, n.Tag, n.Style = typedValue(typ, string(v))
	default:
		return fmt.Errorf("value %s: aliases are not supported", strings.Join(path, "."))
	}
	return nil
}

// typedValue is the YAML scalar of a value sops decrypted as type typ:
// its text, tag and style. sops writes booleans as True and False.
func typedValue(typ, v string) (string, string, yaml.Style) {
	switch typ {
	case "int":
		return v, "!!int", 0
	case "float":
		return v, "!!float", 0
	case "bool":
		return strings.ToLower(v), "!!bool", 0
	case "time":
		return v, "!!timestamp", 0
	}
	return v, "!!str", 0
}

// plainBytes is a cleartext value as sops hashes it.
func plainBytes(n *yaml.Node) []byte {
	if n.Tag == "!!bool" {
		var b bool
		if n.Decode(&b) == nil {
			if b {
				return []byte("True")
			}
			return []byte("False")
		}
	}
	return []byte(n.Value)
}

// decryptValue opens one ENC[AES256_GCM,...] value with the data key and
// the additional data.
func decryptValue(s string, key []byte, aad string) ([]byte, error) {
	m := encRE.FindStringSubmatch(s)
	if m == nil {
		return nil, errors.New("not a sops AES256_GCM value")
	}
	var parts [3][]byte
	for i := range parts {
		b, err := base64.StdEncoding.DecodeString(m[i+1])
		if err != nil {
			return nil, fmt.Errorf("bad base64: %w", err)
		}
		parts[i] = b
	}
	data, iv, tag := parts[0], parts[1], parts[2]
	if len(iv) == 0 || len(tag) != 16 {
		return nil, errors.New("bad iv or tag")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, err
	}
	out, err := gcm.Open(nil, iv, append(data, tag...), []byte(aad))
	if err != nil {
		return nil, errors.New("it does not open with the data key: it was changed, or moved to another key")
	}
	return out, nil
}

// secretOf reads a decrypted Secret document's name and values.
func secretOf(file string, tree []*yaml.Node) (string, map[string][]byte, error) {
	var doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	if err := (&yaml.Node{Kind: yaml.MappingNode, Content: tree}).Decode(&doc); err != nil {
		return "", nil, errdefs.Invalid("%s: %v", file, err)
	}
	if doc.Kind != SecretKind || doc.APIVersion != api.AppAPIVersion {
		return "", nil, errdefs.Invalid("%s: want apiVersion %s and kind %s (leave them out of the encryption, e.g. sops --encrypted-regex '^(data|stringData)$')", file, api.AppAPIVersion, SecretKind)
	}
	if err := api.CheckSecretName(doc.Metadata.Name); err != nil {
		return "", nil, errdefs.Invalid("%s: metadata.name: %v", file, err)
	}
	data := map[string][]byte{}
	for k, v := range doc.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return "", nil, errdefs.Invalid("%s: data.%s is not base64 (put text under stringData)", file, k)
		}
		data[k] = b
	}
	for k, v := range doc.StringData {
		data[k] = []byte(v)
	}
	if len(data) == 0 {
		return "", nil, errdefs.Invalid("%s: the secret has no data or stringData", file)
	}
	if err := api.CheckSecretData(data); err != nil {
		return "", nil, errdefs.Invalid("%s: %v", file, err)
	}
	return doc.Metadata.Name, data, nil
}

// isSecret reports whether a file of a source holds a Secret document:
// a YAML file whose (first) document is of kind Secret.
func isSecret(name string, b []byte) bool {
	if ext := strings.ToLower(path.Ext(name)); ext != ".yaml" && ext != ".yml" {
		return false
	}
	var head struct {
		Kind string `yaml:"kind"`
	}
	return yaml.Unmarshal(b, &head) == nil && head.Kind == SecretKind
}

// ReadAgeKeys reads the age identities of a key file (age-keygen's
// format: AGE-SECRET-KEY-1... lines, # comments). A missing file holds
// none.
func ReadAgeKeys(file string) ([]age.Identity, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the age key file: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, errdefs.Invalid("the age key file %s: %v: write AGE-SECRET-KEY-1... identities in it, one a line (age-keygen makes one)", file, err)
	}
	return ids, nil
}
