package apiauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"path"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// SecretPrefix begins every token secret, so one pasted in the wrong
// place is recognisable.
const SecretPrefix = "skiff_"

// NewSecret returns a new token secret and its hash.
func NewSecret() (secret, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, Hash(secret)
}

// Hash returns the stored form of secret: its SHA-256, in hex.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in time independent of where they differ, whether
// secret hashes to hash.
func Matches(hash, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hash), []byte(Hash(secret))) == 1
}

// CheckRequest refuses a token request that names no known role, gives
// a deployer no App pattern or a bad one, or has a bad name or duration.
// It returns the expiry time (nil: never) counted from now.
func CheckRequest(req api.TokenCreateRequest, now time.Time) (*time.Time, error) {
	switch req.Role {
	case api.RoleAdmin, api.RoleViewer:
		if req.App != "" {
			return nil, errdefs.Invalid("--app applies to deployer tokens only: a %s token is not limited to Apps", req.Role)
		}
	case api.RoleDeployer:
		if req.App == "" {
			return nil, errdefs.Invalid("a deployer token needs --app PATTERN naming the Apps it may change ('*' for every App)")
		}
		if _, err := path.Match(req.App, ""); err != nil {
			return nil, errdefs.Invalid("--app %q is not a valid pattern (shell glob like 'shop-*'): %v", req.App, err)
		}
	default:
		return nil, errdefs.Invalid("--role %q is not a role: use admin, deployer or viewer", req.Role)
	}
	if req.Name != "" && (len(req.Name) > 63 || strings.ContainsFunc(req.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})) {
		return nil, errdefs.Invalid("token name %q: use up to 63 letters, digits, '-', '_' or '.'", req.Name)
	}
	if req.Expires == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(req.Expires)
	if err != nil || d <= 0 {
		return nil, errdefs.Invalid("--expires %q is not a positive duration: use e.g. 30m, 24h or 720h", req.Expires)
	}
	t := now.Add(d)
	return &t, nil
}
