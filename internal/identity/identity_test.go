package identity

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const url = "https://skiff.test:7443"

func TestSignVerify(t *testing.T) {
	is, err := Open(t.TempDir(), url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, exp, err := is.Sign("shop", "shop-00001", "shop-00001-abcde", []string{"billing"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Sub(now) != time.Hour {
		t.Errorf("expiry %s after now, want 1h", exp.Sub(now))
	}
	for _, aud := range []string{Audience, "billing"} {
		c, err := is.Verify(tok, aud, now)
		if err != nil || c.App != "shop" || c.Revision != "shop-00001" || c.Subject != "app:shop" || c.Issuer != url {
			t.Fatalf("verify for %s: %+v %v", aud, c, err)
		}
	}
	if _, err := is.Verify(tok, "other", now); err == nil || !strings.Contains(err.Error(), "aud") {
		t.Errorf("wrong audience: %v", err)
	}
	if _, err := is.Verify(tok, Audience, now.Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "exp") {
		t.Errorf("expired: %v", err)
	}
	parts := strings.Split(tok, ".")
	var claims map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(b, &claims)
	claims["app"] = "admin"
	claims["sub"] = "app:admin"
	b, _ = json.Marshal(claims)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	if _, err := is.Verify(forged, Audience, now); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("tampered: %v", err)
	}
	other, _ := Open(t.TempDir(), url, time.Hour)
	tok2, _, _ := other.Sign("shop", "r", "x", nil, now, time.Hour)
	if _, err := is.Verify(tok2, Audience, now); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("another issuer's key: %v", err)
	}
	otherURL, _ := Open(is.dir, "https://elsewhere", time.Hour)
	tok3, _, _ := otherURL.Sign("shop", "r", "x", nil, now, time.Hour)
	if _, err := is.Verify(tok3, Audience, now); err == nil || !strings.Contains(err.Error(), "iss") {
		t.Errorf("another issuer URL with the same key: %v", err)
	}

	// The JWKS verifies it as any relying party would.
	set := is.JWKS()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	var c Claims
	if len(keys) != 1 || parsed.Claims(keys[0].Key, &c) != nil || c.App != "shop" {
		t.Fatalf("verify with the JWKS: %d keys, %+v", len(keys), c)
	}
	if d := is.Discovery(); d["jwks_uri"] != url+JWKSPath || d["issuer"] != url {
		t.Errorf("discovery: %v", d)
	}
}

func TestRotateKeepsOldKey(t *testing.T) {
	dir := t.TempDir()
	is, _ := Open(dir, url, time.Hour)
	now := time.Now()
	old, _, _ := is.Sign("a", "r", "x", nil, now, time.Hour)
	if err := is.RotateKey(); err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := is.Sign("a", "r", "x", nil, now, time.Hour)
	if len(is.JWKS().Keys) != 2 {
		t.Fatalf("JWKS after a rotation has %d keys, want 2", len(is.JWKS().Keys))
	}
	// A new daemon reads both keys, the newest signing.
	again, err := Open(dir, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := again.Verify(tok, Audience, now); err != nil {
			t.Errorf("after reopening: %v", err)
		}
	}
	tok, _, _ := again.Sign("a", "r", "x", nil, now, time.Hour)
	p, _ := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	pf, _ := jwt.ParseSigned(fresh, []jose.SignatureAlgorithm{jose.ES256})
	if p.Headers[0].KeyID != pf.Headers[0].KeyID {
		t.Errorf("the reopened issuer signs with %s, want the newest key %s", p.Headers[0].KeyID, pf.Headers[0].KeyID)
	}
	// Once the retired key is older than the token lifetime it goes.
	past := time.Now().Add(-time.Hour)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.Chtimes(filepath.Join(dir, e.Name()), past, past)
	}
	os.Chtimes(filepath.Join(dir, keyPrefix+pf.Headers[0].KeyID+".pem"), past.Add(time.Minute), past.Add(time.Minute))
	pruned, _ := Open(dir, url, time.Nanosecond)
	if n := len(pruned.JWKS().Keys); n != 1 {
		t.Errorf("a key retired longer than the token lifetime is still published: %d keys", n)
	}
}

func TestReplicaTokensRefresh(t *testing.T) {
	is, _ := Open(t.TempDir(), url, time.Hour)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := NewReplicas(is, dir, 10*time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	mount, err := r.Issue("shop", "shop-00001", "shop-00001-aaaaa", nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(mount, TokenFile))
	if fi, _ := os.Stat(filepath.Join(mount, TokenFile)); fi.Mode().Perm() != 0o444 {
		t.Errorf("token mode %v, want 0444", fi.Mode().Perm())
	}
	r.Refresh(time.Now().Add(5 * time.Second)) // half-way: kept
	if b, _ := os.ReadFile(filepath.Join(mount, TokenFile)); string(b) != string(first) {
		t.Error("a token half-way through its lifetime was replaced")
	}
	later := time.Now().Add(9 * time.Second)
	r.Refresh(later)
	second, _ := os.ReadFile(filepath.Join(mount, TokenFile))
	if string(second) == string(first) {
		t.Fatal("a token 90% through its lifetime was not replaced")
	}
	if _, err := is.Verify(string(second), Audience, later.Add(5*time.Second)); err != nil {
		t.Errorf("the renewed token: %v", err)
	}
	// A new daemon takes the grants back; Prune drops a gone replica.
	r2, _ := NewReplicas(is, dir, 10*time.Second, log)
	if len(r2.grants) != 1 {
		t.Fatalf("reopened: %d grants, want 1", len(r2.grants))
	}
	r2.Prune(func(string) bool { return false })
	if _, err := os.Stat(mount); !os.IsNotExist(err) {
		t.Errorf("a pruned replica's token directory is still there: %v", err)
	}
}

// FuzzVerify feeds Verify arbitrary tokens: it must refuse them without
// panicking.
func FuzzVerify(f *testing.F) {
	is, _ := Open(f.TempDir(), url, time.Hour)
	tok, _, _ := is.Sign("a", "r", "x", nil, time.Now(), time.Hour)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Replace(tok, ".", "..", 1))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := is.Verify(s, Audience, time.Now())
		if err == nil && s != tok {
			t.Fatalf("accepted a token it did not sign: %q %+v", s, c)
		}
	})
}
