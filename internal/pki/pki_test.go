package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// TestServerCertVerifies checks a server certificate verifies against
// the CA file for its names, and that the CA is made once and kept.
func TestServerCertVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	cert, err := ServerCert(dir, "127.0.0.1:7443", "skiff api")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CertFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v, want mode 0600", fi, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), DNSName: "localhost"}); err == nil {
		t.Error("verified against an empty pool")
	}
	if _, err := ServerCert(dir, "127.0.0.1:7443", "skiff api"); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, CertFileName))
	if string(again) != string(caPEM) {
		t.Error("the CA was made again")
	}
}
