// Package identity gives Apps an identity, as managed identities and
// Kubernetes' projected service-account tokens do: each replica of an App
// that asks for one holds a short-lived JWT, signed by the daemon, naming
// its App and revision; anyone can verify it against the keys the daemon
// publishes (JWKS, with an OpenID Connect discovery document).
//
// Contract:
//   - Tokens are JWS compact serializations signed with ES256; the header
//     names the key ("kid", its RFC 7638 thumbprint). Claims: iss (the
//     issuer URL), sub ("app:NAME"), aud ("skiff" and the App's own
//     audiences), iat, nbf, exp, and app, revision, replica.
//   - The signing key is made at the first start (PEM, mode 0600, under
//     the issuer's directory). RotateKey makes a new one; the previous
//     public key stays in the JWKS, and tokens it signed stay valid, until
//     the longest token lifetime has passed.
//   - Verify accepts a token only if its signature verifies with a known
//     key, its issuer is this issuer, its audience holds the one asked
//     for, and the time is within nbf..exp (one minute of leeway).
package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
)

// Audience is the audience every identity token holds: skiff's own API.
const Audience = "skiff"

// Claims are an identity token's claims.
type Claims struct {
	jwt.Claims
	App      string `json:"app"`
	Revision string `json:"revision"`
	Replica  string `json:"replica"`
}

// key is one signing key.
type key struct {
	priv    *ecdsa.PrivateKey
	kid     string
	retired time.Time // when it stopped signing; zero for the current key
}

// Issuer signs and verifies identity tokens. It is safe for concurrent
// use.
type Issuer struct {
	url string
	dir string
	ttl time.Duration // the longest lifetime of a token it signs

	mu   sync.RWMutex
	keys []key // keys[0] signs
}

// keyPrefix names key files: key-KID.pem; the newest file signs.
const keyPrefix = "key-"

// Open opens the issuer named url whose keys live in dir, making a key
// on the first use. ttl is the longest lifetime of its tokens, how long a
// rotated key stays published.
func Open(dir, url string, ttl time.Duration) (*Issuer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	is := &Issuer{url: url, dir: dir, ttl: ttl}
	if err := is.load(); err != nil {
		return nil, err
	}
	if len(is.keys) == 0 {
		if err := is.RotateKey(); err != nil {
			return nil, err
		}
	}
	return is, nil
}

// URL is the issuer's URL, the tokens' iss.
func (is *Issuer) URL() string { return is.url }

// load reads the key files, newest first, dropping those retired for
// longer than the token lifetime.
func (is *Issuer) load() error {
	ents, err := os.ReadDir(is.dir)
	if err != nil {
		return err
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), keyPrefix) || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		files = append(files, file{e.Name(), info.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	var keys []key
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(is.dir, f.name))
		if err != nil {
			return err
		}
		priv, err := parseKey(b)
		if err != nil {
			return fmt.Errorf("identity key %s: %w", filepath.Join(is.dir, f.name), err)
		}
		k := key{priv: priv, kid: thumbprint(priv)}
		if i > 0 {
			// A key stopped signing when the next one was made.
			k.retired = files[i-1].mod
			if time.Since(k.retired) > is.ttl+time.Minute {
				os.Remove(filepath.Join(is.dir, f.name))
				continue
			}
		}
		keys = append(keys, k)
	}
	is.keys = keys
	return nil
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

func thumbprint(priv *ecdsa.PrivateKey) string {
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err) // a P-256 public key always has one
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// newestKeyFile is the modification time of the newest key file, or
// the zero time without one.
func (is *Issuer) newestKeyFile() (time.Time, error) {
	var newest time.Time
	ents, err := os.ReadDir(is.dir)
	if err != nil {
		return newest, err
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), keyPrefix) || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return newest, nil
}

// RotateKey makes a new signing key; the previous one keeps verifying
// the tokens it signed until they expire.
func (is *Issuer) RotateKey() error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return err
	}
	k := key{priv: priv, kid: thumbprint(priv)}
	b := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	newest, err := is.newestKeyFile()
	if err != nil {
		return err
	}
	path := filepath.Join(is.dir, keyPrefix+k.kid+".pem")
	if err := fsutil.WriteFileAtomic(path, b, 0o600, true); err != nil {
		return err
	}
	// The newest file signs: a file time is coarse (a clock tick), so two
	// keys made within one tick would tie; the new one is made newer.
	if info, err := os.Stat(path); err == nil && !info.ModTime().After(newest) {
		t := newest.Add(time.Millisecond)
		if err := os.Chtimes(path, t, t); err != nil {
			return err
		}
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	now := time.Now()
	for i := range is.keys {
		if is.keys[i].retired.IsZero() {
			is.keys[i].retired = now
		}
	}
	is.keys = append([]key{k}, is.keys...)
	return nil
}

// Sign returns a token for the replica of app's revision, valid for ttl
// from now, for the audiences (Audience is always added).
func (is *Issuer) Sign(app, revision, replica string, audiences []string, now time.Time, ttl time.Duration) (string, time.Time, error) {
	is.mu.RLock()
	k := is.keys[0]
	is.mu.RUnlock()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.kid))
	if err != nil {
		return "", time.Time{}, err
	}
	aud := append([]string{Audience}, audiences...)
	exp := now.Add(ttl)
	c := Claims{
		Claims: jwt.Claims{Issuer: is.url, Subject: "app:" + app, Audience: jwt.Audience(slices.Compact(aud)),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp)},
		App: app, Revision: revision, Replica: replica,
	}
	tok, err := jwt.Signed(sig).Claims(c).Serialize()
	return tok, exp, err
}

// Verify checks token as the package doc says and returns its claims.
// Its errors say why a token is refused, without echoing it.
func (is *Issuer) Verify(token, audience string, now time.Time) (Claims, error) {
	var c Claims
	t, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, errdefs.Invalid("not a signed identity token: %v", err)
	}
	if len(t.Headers) != 1 {
		return c, errdefs.Invalid("an identity token has exactly one signature")
	}
	kid := t.Headers[0].KeyID
	is.mu.RLock()
	var pub *ecdsa.PublicKey
	for _, k := range is.keys {
		if k.kid == kid {
			pub = &k.priv.PublicKey
		}
	}
	is.mu.RUnlock()
	if pub == nil {
		return c, errdefs.Invalid("identity token signed by an unknown key %q", kid)
	}
	if err := t.Claims(pub, &c); err != nil {
		return c, errdefs.Invalid("identity token signature does not verify")
	}
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: is.url, AnyAudience: jwt.Audience{audience}, Time: now}, time.Minute); err != nil {
		return c, errdefs.Invalid("identity token refused: %v", err)
	}
	if c.App == "" || c.Subject != "app:"+c.App {
		return c, errdefs.Invalid("identity token names no App")
	}
	return c, nil
}

// JWKS is the public keys, for /.well-known/jwks.json.
func (is *Issuer) JWKS() jose.JSONWebKeySet {
	is.mu.RLock()
	defer is.mu.RUnlock()
	var set jose.JSONWebKeySet
	for _, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set
}

// Discovery is the OpenID Connect discovery document, for
// /.well-known/openid-configuration.
func (is *Issuer) Discovery() map[string]any {
	return map[string]any{
		"issuer":                                is.url,
		"jwks_uri":                              strings.TrimSuffix(is.url, "/") + JWKSPath,
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "app", "revision", "replica"},
	}
}

// The paths the documents are served at.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks.json"
)
