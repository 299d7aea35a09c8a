package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesAndReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	if !ca.cert.IsCA || ca.cert.NotAfter.Sub(ca.cert.NotBefore) < 9*365*24*time.Hour {
		t.Fatalf("root: IsCA %v, valid %v..%v; want a long-lived CA", ca.cert.IsCA, ca.cert.NotBefore, ca.cert.NotAfter)
	}
	if pk, ok := ca.cert.PublicKey.(*ecdsa.PublicKey); !ok || pk.Curve != elliptic.P256() {
		t.Fatalf("root key %T; want ECDSA P-256", ca.cert.PublicKey)
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatal("reopening the CA made a new root")
	}
	b, _ := os.ReadFile(again.CertFile())
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate", again.CertFile())
	}
}

func TestLeafVerifiesForItsHostOnly(t *testing.T) {
	ca, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Leaf("Shop.Localhost.")
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: "shop.localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := c.Leaf.Verify(opts); err != nil {
		t.Fatalf("leaf does not verify against the root: %v", err)
	}
	opts.DNSName = "other.localhost"
	if _, err := c.Leaf.Verify(opts); err == nil {
		t.Fatal("leaf for shop.localhost verifies for other.localhost")
	}
	other, _ := Open(t.TempDir())
	opts.DNSName, opts.Roots = "shop.localhost", other.Pool()
	if _, err := c.Leaf.Verify(opts); err == nil {
		t.Fatal("leaf verifies against another CA")
	}
	ip, err := ca.Leaf("127.0.0.1")
	if err != nil || len(ip.Leaf.IPAddresses) != 1 {
		t.Fatalf("leaf for an IP: %v, %v", err, ip)
	}
	if again, _ := ca.Leaf("shop.localhost"); again != c {
		t.Fatal("second Leaf for the same host issued anew instead of using the cache")
	}
}

func TestLeafRenewedBeforeExpiry(t *testing.T) {
	ca, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca.Now = func() time.Time { return now }
	first, err := ca.Leaf("a.localhost")
	if err != nil {
		t.Fatal(err)
	}
	now = first.Leaf.NotAfter.Add(-RenewBefore - time.Minute)
	if c, _ := ca.Leaf("a.localhost"); c != first {
		t.Fatal("leaf re-issued outside the renewal window")
	}
	now = first.Leaf.NotAfter.Add(-RenewBefore + time.Minute)
	renewed, err := ca.Leaf("a.localhost")
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("leaf inside the renewal window not re-issued (expires %v, was %v)", renewed.Leaf.NotAfter, first.Leaf.NotAfter)
	}
}

func TestGetCertificateRefusesUnknownHost(t *testing.T) {
	ca, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	get := ca.GetCertificate(func(h string) bool { return h == "shop.localhost" })
	if c, err := get(&tls.ClientHelloInfo{ServerName: "SHOP.localhost"}); err != nil || c.Leaf.DNSNames[0] != "shop.localhost" {
		t.Fatalf("known host: %v, %v", c, err)
	}
	_, err = get(&tls.ClientHelloInfo{ServerName: "evil.localhost"})
	if err == nil || !strings.Contains(err.Error(), "no app serves host evil.localhost") {
		t.Fatalf("unknown host: err %v; want a refusal naming it", err)
	}
	if _, err := get(&tls.ClientHelloInfo{}); err == nil || !strings.Contains(err.Error(), "SNI") {
		t.Fatalf("no server name: err %v; want a refusal", err)
	}
}

func TestFileCertsReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	ca1, _ := Open(filepath.Join(dir, "one"))
	ca2, _ := Open(filepath.Join(dir, "two"))
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	var fc FileCerts
	if _, err := fc.Get(certFile, keyFile); err == nil || !strings.Contains(err.Error(), "c.pem") {
		t.Fatalf("missing files: %v; want an error naming the file", err)
	}
	write := func(ca *CA, mod time.Time) {
		t.Helper()
		c, _ := ca.Leaf("x.localhost")
		der, _ := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644)
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
		os.Chtimes(certFile, mod, mod)
	}
	write(ca1, time.Now().Add(-time.Hour))
	c1, err := fc.Get(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := fc.Get(certFile, keyFile); again != c1 {
		t.Fatal("unchanged files loaded again")
	}
	write(ca2, time.Now())
	c2, err := fc.Get(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c1 || string(c2.Certificate[0]) == string(c1.Certificate[0]) {
		t.Fatal("changed files not reloaded")
	}
}
