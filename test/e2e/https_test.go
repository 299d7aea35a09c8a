package e2e

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/pki"
)

// TestHTTPSIngress serves Apps over HTTPS with the daemon's local CA, an
// App's own certificate files, and a redirect from HTTP, through a hot
// restart.
func TestHTTPSIngress(t *testing.T) {
	d, err := startDaemonFrom("https", env.skiff, "--ingress-tls-addr", "127.0.0.1:0", "--upgrade-timeout", "10s")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	var info api.Info
	if err := json.Unmarshal([]byte(must(t, d, "info", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.IngressTLSAddr == "" || info.CAFile != filepath.Join(d.Root, "pki", "ca.crt") {
		t.Fatalf("info: ingressTLSAddr %q caFile %q", info.IngressTLSAddr, info.CAFile)
	}
	if out := must(t, d, "info"); !strings.Contains(out, info.CAFile) {
		t.Fatalf("skiff info does not show the CA file:\n%s", out)
	}
	tlsAddr, addr := info.IngressTLSAddr, info.IngressAddr
	// The CA a user trusts is the one skiff ca export writes.
	exported := filepath.Join(t.TempDir(), "skiff-ca.pem")
	must(t, d, "ca", "export", "-o", exported)
	if b, _ := os.ReadFile(info.CAFile); len(b) == 0 || must(t, d, "ca", "export") != string(b) {
		t.Fatalf("skiff ca export does not print %s", info.CAFile)
	}
	info.CAFile = exported
	fails(t, env.daemon, []string{"serves no HTTPS", "--ingress-tls-addr"}, "ca", "export")
	_, port, _ := net.SplitHostPort(tlsAddr)

	// An App's own certificate, from a CA the daemon does not know.
	own, err := pki.Open(filepath.Join(t.TempDir(), "own-ca"))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeLeaf(t, own, "own.localhost")

	applyYAML(t, d, helloApp("sec", "1", "  ingress: {redirectHTTPS: true}\n"))
	applyYAML(t, d, helloApp("open", "1", ""))
	applyYAML(t, d, helloApp("own", "1", "  ingress: {tls: {certFile: "+certFile+", keyFile: "+keyFile+"}}\n"))
	for _, a := range []string{"sec", "open", "own"} {
		eventually(t, 30*time.Second, a+" to be ready", appReady(t, d, a))
	}

	curl := func(ca, host string, extra ...string) (string, error) {
		args := append([]string{"-sS", "--max-time", "10", "--cacert", ca, "--resolve", host + ":" + port + ":127.0.0.1",
			"-w", " http=%{http_version}", "https://" + host + ":" + port + "/"}, extra...)
		out, err := exec.Command("curl", args...).CombinedOutput()
		return string(out), err
	}
	t.Run("local CA with HTTP/2", func(t *testing.T) {
		for _, a := range []string{"sec", "open"} {
			out, err := curl(info.CAFile, a+".localhost")
			if err != nil || !strings.Contains(out, "version 1") || !strings.HasSuffix(out, " http=2") {
				t.Fatalf("curl %s over HTTPS: %v\n%s", a, err, out)
			}
		}
		out, err := curl(info.CAFile, "open.localhost", "--http1.1")
		if err != nil || !strings.HasSuffix(out, " http=1.1") {
			t.Fatalf("curl --http1.1: %v\n%s", err, out)
		}
	})
	t.Run("wrong CA refused", func(t *testing.T) {
		out, err := curl(own.CertFile(), "sec.localhost")
		if err == nil || !strings.Contains(out, "certificate") {
			t.Fatalf("curl trusting another CA: %v\n%s", err, out)
		}
		if out, err := curl(info.CAFile, "nobody.localhost"); err == nil {
			t.Fatalf("a host no App serves got a certificate:\n%s", out)
		}
	})
	t.Run("App certificate files", func(t *testing.T) {
		out, err := curl(own.CertFile(), "own.localhost")
		if err != nil || !strings.Contains(out, "version 1") {
			t.Fatalf("curl own.localhost with its own CA: %v\n%s", err, out)
		}
		if out, err := curl(info.CAFile, "own.localhost"); err == nil {
			t.Fatalf("own.localhost served a certificate of the local CA:\n%s", out)
		}
	})
	t.Run("redirect per App", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/x?y=1", nil)
		req.Host = "sec.localhost"
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := "https://sec.localhost:" + port + "/x?y=1"
		if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
			t.Fatalf("HTTP to sec: %d Location %q, want 308 to %s", res.StatusCode, res.Header.Get("Location"), want)
		}
		if code, body := get(t, addr, "open.localhost", "/"); code != 200 || !strings.Contains(body, "version 1") {
			t.Fatalf("HTTP to open: %d %s", code, body)
		}
	})
	t.Run("hot restart keeps HTTPS", func(t *testing.T) {
		old := d.pid(t)
		syscall.Kill(old, syscall.SIGHUP)
		d.followHandover(t, old)
		out, err := curl(info.CAFile, "sec.localhost")
		if err != nil || !strings.Contains(out, "version 1") || !strings.HasSuffix(out, " http=2") {
			t.Fatalf("curl after the hot restart: %v\n%s", err, out)
		}
		b, _ := os.ReadFile(d.Log)
		if strings.Count(string(b), "ingress-tls="+tlsAddr) < 2 {
			t.Fatalf("the new daemon does not serve HTTPS on %s:\n%s", tlsAddr, b)
		}
	})
	for _, a := range []string{"sec", "open", "own"} {
		must(t, d, "delete", "app", a)
	}
}

// writeLeaf writes a certificate for host from ca, and its key, to files.
func writeLeaf(t *testing.T, ca *pki.CA, host string) (certFile, keyFile string) {
	t.Helper()
	c, err := ca.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
