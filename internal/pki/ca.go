// Package pki is skiff's local certificate authority: a long-lived root
// that skiff makes once under its state directory, and short-lived leaf
// certificates it issues from it on demand, as Caddy's internal issuer
// does. Users trust the root (ca.crt) once; every name skiff serves is
// then trusted.
//
// Contract:
//
//   - Open loads the CA from a directory, or creates it there at first
//     use: an ECDSA P-256 key (ca.key, mode 0600) and a self-signed root
//     certificate (ca.crt, PEM) valid for RootLifetime.
//   - Leaf returns a certificate for one host name, issued on first use
//     and cached; a cached one is re-issued once less than RenewBefore of
//     its LeafLifetime is left. Leaves are ECDSA P-256, for server
//     authentication only, and carry the chain up to (not including)
//     the root.
//   - GetCertificate plugs Leaf into tls.Config, refusing the names its
//     caller does not serve.
//   - ServerCert issues a certificate for a listener that is not an App
//     host (the API over TCP, the registry): it names localhost, the
//     loopback addresses, the host name and the listener's address, and
//     carries the root in its chain.
//   - FileCerts loads certificate and key files given by the user,
//     reloading a pair when either file changes.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
)

// Lifetimes of what the CA issues.
const (
	// RootLifetime is how long the root certificate is valid.
	RootLifetime = 10 * 365 * 24 * time.Hour
	// LeafLifetime is how long a leaf certificate is valid.
	LeafLifetime = 7 * 24 * time.Hour
	// RenewBefore is how long before its expiry a leaf is re-issued.
	RenewBefore = 2 * 24 * time.Hour
)

// Files of the CA in its directory.
const (
	CertFileName = "ca.crt"
	KeyFileName  = "ca.key"
)

// CA is a local certificate authority. Its methods are safe for
// concurrent use.
type CA struct {
	dir     string
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	// Now is the clock; tests set it before the first Leaf.
	Now func() time.Time

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// Open loads the CA kept in dir, creating the directory (0700), the key
// and the root certificate if they are not there yet.
func Open(dir string) (*CA, error) {
	ca := &CA{dir: dir, Now: time.Now, leaves: map[string]*tls.Certificate{}}
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFileName))
	if errors.Is(err, os.ErrNotExist) {
		if err := ca.create(); err != nil {
			return nil, err
		}
		return ca, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the local CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil {
		return nil, fmt.Errorf("read the local CA's key: %w (remove %s to make a new CA)", err, dir)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load the local CA in %s: %w (remove the directory to make a new CA)", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load the local CA in %s: the key is not ECDSA", dir)
	}
	ca.cert, ca.key, ca.certPEM = pair.Leaf, key, certPEM
	return ca, nil
}

// create makes the key and root certificate and writes them.
func (ca *CA) create() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := ca.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "skiff local CA", Organization: []string{"skiff"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	ca.key = key
	ca.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.MkdirAll(ca.dir, 0o700); err != nil {
		return fmt.Errorf("create the local CA's directory: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := writeFile(filepath.Join(ca.dir, KeyFileName), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(ca.dir, CertFileName), ca.certPEM, 0o644)
}

// writeFile writes data to path atomically (a temporary file renamed).
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := fsutil.WriteFileAtomic(path, data, mode, true); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// CertFile is the path of the root certificate (PEM), the file users
// add to their trust stores.
func (ca *CA) CertFile() string { return filepath.Join(ca.dir, CertFileName) }

// CertPEM returns the root certificate in PEM.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Pool returns a certificate pool holding the root alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Leaf returns a certificate for host (a DNS name or an IP address),
// issuing one if none is cached or the cached one is within RenewBefore
// of its expiry.
func (ca *CA) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return nil, errdefs.Invalid("pki: no host name to issue a certificate for")
	}
	now := ca.Now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.leaves[host]; c != nil && now.Before(c.Leaf.NotAfter.Add(-RenewBefore)) {
		return c, nil
	}
	c, err := ca.issue(host, now)
	if err != nil {
		return nil, err
	}
	ca.leaves[host] = c
	return c, nil
}

// issue signs a new leaf for host valid from now.
func (ca *CA) issue(host string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: issue a certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// GetCertificate returns a tls.Config.GetCertificate that answers a
// client with the leaf for the name it asks (SNI) when serves accepts
// that name, and refuses the handshake otherwise (also when the client
// names no host).
func (ca *CA) GetCertificate(serves func(host string) bool) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		host := strings.ToLower(hello.ServerName)
		if host == "" {
			return nil, errdefs.Invalid("no server name (SNI) in the TLS handshake: ask for the App's host name")
		}
		if !serves(host) {
			return nil, errdefs.NotFound("no app serves host %s", host)
		}
		return ca.Leaf(host)
	}
}
