package api

import (
	"regexp"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// Secret is what the API says of a secret: its keys and versions, never
// its values (see SecretValues).
type Secret struct {
	Name string `json:"name"`
	// Version is the current version, from 1; every write makes a new one.
	Version int64 `json:"version"`
	// Keys are the current version's keys, sorted.
	Keys    []string  `json:"keys"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Versions lists every stored version, oldest first (inspect only).
	Versions []SecretVersion `json:"versions,omitempty"`
	// UsedBy names the Apps whose spec uses the secret (inspect only).
	UsedBy []string `json:"usedBy,omitempty"`
}

// SecretVersion is one stored version of a secret.
type SecretVersion struct {
	Version int64     `json:"version"`
	Keys    []string  `json:"keys"`
	Created time.Time `json:"created"`
}

// SecretWriteRequest creates a secret (POST /secrets) or writes a new
// version of it (PUT /secrets/NAME): Data is the whole new content.
type SecretWriteRequest struct {
	Name string            `json:"name,omitempty"`
	Data map[string][]byte `json:"data"`
}

// SecretValues is a secret's content, only returned to
// GET /secrets/NAME?reveal=true.
type SecretValues struct {
	Name    string            `json:"name"`
	Version int64             `json:"version"`
	Data    map[string][]byte `json:"data"`
}

// Limits of a secret.
const (
	// MaxSecretSize bounds the sum of a secret's values.
	MaxSecretSize = 500 << 10
	// MaxSecretKeys bounds how many keys a secret holds.
	MaxSecretKeys = 256
)

var (
	secretNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	secretKeyRE  = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// CheckSecretName says whether name can name a secret: lowercase DNS
// labels joined by '.', at most 253 characters (what an App's secretRef
// accepts).
func CheckSecretName(name string) error {
	if len(name) > 253 || !secretNameRE.MatchString(name) {
		return errdefs.Invalid("secret name %q is not valid: use lowercase letters, digits and '-', in labels joined by '.', such as db or shop.db", name)
	}
	return nil
}

// SecretFileName reports whether name can name a file of a secret
// volume: letters, digits, '-', '_' and '.', at most 253 of them, not .
// or ..
func SecretFileName(name string) bool {
	return name != "." && name != ".." && len(name) <= 253 && secretKeyRE.MatchString(name)
}

// CheckSecretData says whether data can be a secret's content: 1 to
// MaxSecretKeys keys of letters, digits, '-', '_' and '.', values of at
// most MaxSecretSize bytes in all.
func CheckSecretData(data map[string][]byte) error {
	if len(data) == 0 {
		return errdefs.Invalid("a secret needs at least one key: give --from-literal KEY=VALUE, --from-file KEY=PATH or --from-env-file FILE")
	}
	if len(data) > MaxSecretKeys {
		return errdefs.Invalid("a secret holds at most %d keys, this one has %d", MaxSecretKeys, len(data))
	}
	size := 0
	for k, v := range data {
		if len(k) > 253 || !secretKeyRE.MatchString(k) {
			return errdefs.Invalid("secret key %q is not valid: use letters, digits, '-', '_' and '.'", k)
		}
		size += len(v)
	}
	if size > MaxSecretSize {
		return errdefs.Invalid("the secret's values are %d bytes, more than the %d allowed", size, MaxSecretSize)
	}
	return nil
}
