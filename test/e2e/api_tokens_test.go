package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// remoteRun runs the CLI against d's API over TCP at host, with token
// and the CA file ca, and extra environment variables.
func remoteRun(host, token, ca string, envv []string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var full []string
	if host != "" {
		full = append(full, "--host", host)
	}
	if token != "" {
		full = append(full, "--token", token)
	}
	if ca != "" {
		full = append(full, "--ca", ca)
	}
	cmd := exec.CommandContext(ctx, env.skiff, append(full, args...)...)
	cmd.Env = append(append(os.Environ(), "SKIFF_SOCKET=/nonexistent/skiff.sock"), envv...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// TestAPITokens: the API over TCP with TLS from skiff's local CA and
// bearer tokens per role; expiry, revocation, a wrong CA, no token, the
// rate limit on failures, and the audit events of mutating calls.
func TestAPITokens(t *testing.T) {
	addr := loopbackAddr(t)
	d := &Daemon{Name: "apitokens", Root: filepath.Join(env.tmp, "root-apitokens"), Socket: filepath.Join(env.tmp, "apitokens.sock"),
		Log: filepath.Join(env.tmp, "apitokens.log"), Args: []string{"--api-addr", addr}}
	extraDaemons = append(extraDaemons, d)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	if err := buildSubset(d, "hello", "busybox"); err != nil {
		t.Fatal(err)
	}
	host := "https://" + addr
	ca := filepath.Join(d.Root, "pki", "ca.crt")
	token := func(args ...string) string {
		out := strings.TrimSpace(must(t, d, append([]string{"token", "create"}, args...)...))
		if !strings.HasPrefix(out, "skiff_") || strings.Contains(out, "\n") {
			t.Fatalf("token create printed %q, want one skiff_ token", out)
		}
		return out
	}
	viewer := token("--role", "viewer", "--name", "ci-viewer")
	deployer := token("--role", "deployer", "--app", "app-*", "--name", "ci-deployer")
	expired := token("--role", "admin", "--expires", "1s", "--name", "short")
	revoked := token("--role", "admin", "--name", "gone")
	fails(t, d, []string{"needs --app"}, "token", "create", "--role", "deployer")

	// The viewer reads, and may not apply: 403 naming its role.
	if r := remoteRun(host, viewer, ca, nil, "ps", "-a"); r.Code != 0 || !strings.Contains(r.Stdout, "NAME") {
		t.Fatalf("viewer ps: %s", r)
	}
	if r := remoteRun(host, viewer, ca, nil, "get", "apps"); r.Code != 0 {
		t.Fatalf("viewer get apps: %s", r)
	}
	appFile := func(name string) string {
		p := filepath.Join(t.TempDir(), name+".yaml")
		os.WriteFile(p, []byte(helloApp(name, "1", "")), 0o644)
		return p
	}
	if r := remoteRun(host, viewer, ca, nil, "apply", "-f", appFile("app-a")); r.Code == 0 || !strings.Contains(r.Stderr, "role viewer") {
		t.Fatalf("viewer apply was not refused naming the role: %s", r)
	}
	// The deployer applies the Apps its pattern names, by env vars too.
	envv := []string{"SKIFF_HOST=" + host, "SKIFF_TOKEN=" + deployer, "SKIFF_CA=" + ca}
	if r := remoteRun("", "", "", envv, "apply", "-f", appFile("app-a")); r.Code != 0 || !strings.Contains(r.Stdout, "app/app-a created") {
		t.Fatalf("deployer apply app-a: %s", r)
	}
	defer d.Run("", "delete", "app", "app-a") // before Cleanup: its replicas go with it
	if r := remoteRun("", "", "", envv, "apply", "-f", appFile("b-app")); r.Code == 0 || !strings.Contains(r.Stderr, `does not match App "b-app"`) {
		t.Fatalf("deployer apply b-app was not refused: %s", r)
	}
	if r := remoteRun("", "", "", envv, "run", "-d", "hello"); r.Code == 0 || !strings.Contains(r.Stderr, "role deployer") {
		t.Fatalf("deployer run was not refused: %s", r)
	}
	if r := remoteRun("", "", "", envv, "token", "ls"); r.Code == 0 || !strings.Contains(r.Stderr, "unix socket") {
		t.Fatalf("token ls over TCP was not refused: %s", r)
	}
	if _, err := os.Stat(ca); err != nil {
		t.Fatal(err)
	}

	// Revoked and expired tokens, and no token, are 401.
	must(t, d, "token", "revoke", "gone")
	if r := remoteRun(host, revoked, ca, nil, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "unknown or revoked token") {
		t.Fatalf("revoked token: %s", r)
	}
	time.Sleep(1100 * time.Millisecond)
	if r := remoteRun(host, expired, ca, nil, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "token short expired") {
		t.Fatalf("expired token: %s", r)
	}
	if code, _ := rawCall(t, addr, ca, ""); code != 401 {
		t.Fatalf("no token: status %d, want 401", code)
	}
	if r := remoteRun(host, "", ca, nil, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "needs a token") {
		t.Fatalf("--host without a token: %s", r)
	}
	// A client not trusting the CA refuses the server.
	if r := remoteRun(host, viewer, "", nil, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "not signed by a CA you trust") || !strings.Contains(r.Stderr, "--ca") {
		t.Fatalf("wrong CA: %s", r)
	}

	// token ls shows names, roles, patterns and last use, never a secret.
	ls := must(t, d, "token", "ls")
	for _, w := range []string{"ci-viewer", "ci-deployer", "app-*", "short"} {
		if !strings.Contains(ls, w) {
			t.Fatalf("token ls lacks %q:\n%s", w, ls)
		}
	}
	if strings.Contains(ls, "gone") || strings.Contains(ls, "skiff_") {
		t.Fatalf("token ls shows a revoked token or a secret:\n%s", ls)
	}

	// The audit trail names the token of each mutating call.
	audit := must(t, d, "audit")
	for _, w := range []string{"ci-deployer", "POST /v1/apps -> 200", "ci-viewer", "POST /v1/apps -> 403", "AuthFailed", "socket"} {
		if !strings.Contains(audit, w) {
			t.Fatalf("skiff audit lacks %q:\n%s", w, audit)
		}
	}

	// An admin runs containers, and exec's upgraded stream goes over TLS.
	admin := token("--role", "admin", "--name", "ops")
	if r := remoteRun(host, admin, ca, nil, "run", "-d", "--name", "tok-exec", "busybox", "sleep", "300"); r.Code != 0 {
		t.Fatalf("admin run: %s", r)
	}
	if r := remoteRun(host, admin, ca, nil, "exec", "tok-exec", "echo", "exec-over-tls"); r.Code != 0 || !strings.Contains(r.Stdout, "exec-over-tls") {
		t.Fatalf("admin exec: %s", r)
	}
	if a := must(t, d, "audit", "--who", "ops"); !strings.Contains(a, "POST /v1/containers -> 201") || !strings.Contains(a, "/v1/containers/tok-exec/exec -> 200") {
		t.Fatalf("the admin's calls are not audited:\n%s", a)
	}

	// Repeated bad tokens from one address: 429 with Retry-After.
	var code int
	var retry string
	for i := 0; i < 8 && code != 429; i++ {
		code, retry = rawCall(t, addr, ca, "skiff_wrong")
	}
	if code != 429 || retry == "" {
		t.Fatalf("bad tokens were not rate limited: last status %d, Retry-After %q", code, retry)
	}
	if r := remoteRun(host, viewer, ca, nil, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "too many failed authentications") {
		t.Fatalf("a limited address was served: %s", r)
	}
	if a := must(t, d, "audit", "--who", "-"); !strings.Contains(a, "RateLimited") {
		t.Fatalf("rate limiting was not recorded:\n%s", a)
	}

	// The TCP socket is handed over on SIGHUP: the new daemon serves it
	// (with a fresh limiter).
	old := d.pid(t)
	must(t, d, "daemon", "--upgrade", "--root", d.Root)
	d.followHandover(t, old)
	if r := remoteRun(host, viewer, ca, nil, "ps"); r.Code != 0 || !strings.Contains(r.Stdout, "tok-exec") {
		t.Fatalf("after the upgrade: %s", r)
	}
}

// rawCall GETs /v1/containers at addr over TLS trusting ca, with token as
// bearer if set, and returns the status and Retry-After.
func rawCall(t *testing.T, addr, ca, token string) (int, string) {
	t.Helper()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://%s/v1/containers", addr), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}
