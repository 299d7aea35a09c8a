package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// identityApp is an App of busybox's httpd with an identity and a secret
// in its env.
const identityApp = `apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s}
spec:
  image: busybox
  command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www']
  env: [{name: DB_PASSWORD, secretRef: %s/password}]
  identity: {enabled: true, audiences: [billing]}
  probes:
    readiness: {http: /, period: 200ms}
`

// TestAppIdentity: a replica of an App with spec.identity reads its
// token in the container; the token verifies against the JWKS the
// discovery document names, is renewed before it expires, reads its
// App's secret through the TCP API and nothing else; a tampered token
// is refused.
func TestAppIdentity(t *testing.T) {
	addr := loopbackAddr(t)
	d := &Daemon{Name: "identity", Root: filepath.Join(env.tmp, "root-identity"), Socket: filepath.Join(env.tmp, "identity.sock"),
		Log: filepath.Join(env.tmp, "identity.log"), Args: []string{"--api-addr", addr, "--identity-token-ttl", "20s"}}
	extraDaemons = append(extraDaemons, d)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	if err := buildSubset(d, "busybox"); err != nil {
		t.Fatal(err)
	}
	must(t, d, "secret", "create", "shopdb", "--from-literal", "password=id-canary-1")
	must(t, d, "secret", "create", "otherdb", "--from-literal", "password=id-canary-2")
	applyYAML(t, d, fmt.Sprintf(identityApp, "idshop", "shopdb"))
	applyYAML(t, d, fmt.Sprintf(identityApp, "idother", "otherdb"))
	for _, a := range []string{"idshop", "idother"} {
		eventually(t, 30*time.Second, a+" to be ready", appReady(t, d, a))
	}
	replica := strings.TrimSpace(must(t, d, "ps", "--filter", "label=skiff.dev/app=idshop", "--format", "{{.Names}}"))
	if replica == "" || strings.Contains(replica, "\n") {
		t.Fatalf("replicas of idshop: %q", replica)
	}
	readToken := func() string {
		return strings.TrimSpace(must(t, d, "exec", replica, "cat", "/run/secrets/skiff.dev/identity/token"))
	}
	tok := readToken()

	pem, _ := os.ReadFile(filepath.Join(d.Root, "pki", "ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, "https://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// Discovery, then the JWKS it names, with no token.
	code, body := call("GET", "/.well-known/openid-configuration", "")
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &disc) != nil || disc.Issuer != "https://"+addr || disc.JWKSURI != "https://"+addr+"/.well-known/jwks.json" {
		t.Fatalf("discovery: %d %s", code, body)
	}
	code, body = call("GET", strings.TrimPrefix(disc.JWKSURI, "https://"+addr), "")
	var set jose.JSONWebKeySet
	if code != 200 || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %d %s", code, body)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("the token in the replica is not a JWT: %v (%q)", err, tok)
	}
	var claims struct {
		jwt.Claims
		App      string `json:"app"`
		Revision string `json:"revision"`
		Replica  string `json:"replica"`
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 || parsed.Claims(keys[0].Key, &claims) != nil {
		t.Fatalf("the token does not verify with the JWKS (kid %q)", parsed.Headers[0].KeyID)
	}
	if err := claims.Validate(jwt.Expected{Issuer: disc.Issuer, AnyAudience: jwt.Audience{"billing"}, Time: time.Now()}); err != nil ||
		claims.App != "idshop" || claims.Revision != "idshop-00001" || claims.Replica != replica || claims.Subject != "app:idshop" {
		t.Fatalf("claims %+v: %v", claims, err)
	}

	// The API: its App and its secret, nothing else.
	if code, body := call("GET", "/v1/secrets/shopdb?reveal=true", tok); code != 200 || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte("id-canary-1"))) {
		t.Errorf("its own secret: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/apps/idshop", tok); code != 200 || !strings.Contains(body, `"idshop"`) {
		t.Errorf("its own App: %d %s", code, body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/secrets/otherdb?reveal=true"}, {"GET", "/v1/apps/idother"}, {"GET", "/v1/containers"},
		{"DELETE", "/v1/apps/idshop"}, {"POST", "/v1/apps/idshop/scale"},
	} {
		if code, body := call(c.method, c.path, tok); code != 403 || !strings.Contains(body, `identity token of App \"idshop\"`) {
			t.Errorf("%s %s with the identity token: %d %s, want 403", c.method, c.path, code, body)
		}
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	if tampered == tok {
		tampered = tok[:len(tok)-4] + "BBBB"
	}
	if code, body := call("GET", "/v1/apps/idshop", tampered); code != 401 || !strings.Contains(body, "signature") {
		t.Errorf("a tampered token: %d %s, want 401", code, body)
	}

	// Renewed at 80% of its 20 s: the file changes, the new one works.
	var renewed string
	eventually(t, 30*time.Second, "the token to be renewed", func() bool {
		renewed = readToken()
		return renewed != tok
	})
	if code, _ := call("GET", "/v1/apps/idshop", renewed); code != 200 {
		t.Errorf("the renewed token: %d", code)
	}
	// Deleting the App removes its replicas' tokens.
	must(t, d, "delete", "app", "idshop")
	eventually(t, 30*time.Second, "the replica's token directory to go", func() bool {
		_, err := os.Stat(filepath.Join(d.Root, "identity", "replicas", replica))
		return os.IsNotExist(err)
	})
}
