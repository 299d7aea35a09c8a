package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// ListenConfig says where and how the registry listens.
type ListenConfig struct {
	// Addr is HOST:PORT. Plain HTTP is only allowed on a loopback host.
	Addr string
	// CertFile and KeyFile are a TLS certificate and key to serve with.
	CertFile, KeyFile string
	// LocalCA serves with a certificate made by a CA skiff keeps in Dir
	// (ca.crt, for clients to trust, and ca.key).
	LocalCA bool
	// Dir holds the local CA.
	Dir string
}

// CAFile is the local CA's certificate under ListenConfig.Dir.
const CAFile = "ca.crt"

// IsLoopback reports whether addr's host is a loopback address or
// "localhost".
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check refuses a configuration Listen would refuse: an address that is
// not HOST:PORT, plain HTTP on a non-loopback address, a certificate
// without its key.
func (c ListenConfig) Check() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return errdefs.Invalid("--registry-addr %q is not HOST:PORT: %v", c.Addr, err)
	}
	useTLS := c.CertFile != "" || c.KeyFile != "" || c.LocalCA
	if !useTLS && !IsLoopback(c.Addr) {
		return errdefs.Invalid("--registry-addr %s is not a loopback address: serving the registry there needs TLS; give --registry-tls-cert and --registry-tls-key, or --registry-tls-local for a certificate from skiff's local CA", c.Addr)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errdefs.Invalid("give both --registry-tls-cert and --registry-tls-key")
	}
	return nil
}

// Listen opens the registry's listener (TLS when configured). It returns
// the path of the local CA's certificate when one is used. The socket is
// opened with SO_REUSEPORT, so a daemon taking over on SIGHUP can listen
// while the old one still serves.
func Listen(ctx context.Context, c ListenConfig) (net.Listener, string, error) {
	if err := c.Check(); err != nil {
		return nil, "", err
	}
	var tc *tls.Config
	caPath := ""
	switch {
	case c.CertFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, "", errdefs.Invalid("load the registry's TLS certificate %s and key %s: %v", c.CertFile, c.KeyFile, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case c.LocalCA:
		cert, err := localCert(c.Dir, c.Addr)
		if err != nil {
			return nil, "", fmt.Errorf("make the registry's certificate: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		caPath = filepath.Join(c.Dir, CAFile)
	}
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, "", errdefs.Unavailable("registry: listen on %s: %w (is another server using the port? choose another --registry-addr)", c.Addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, caPath, nil
}

// localCert returns a server certificate for addr signed by the CA in
// dir, making the CA first if there is none.
func localCert(dir, addr string) (tls.Certificate, error) {
	ca, caKey, err := loadOrMakeCA(dir)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	host, _, _ := net.SplitHostPort(addr)
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "skiff registry"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if hn, err := os.Hostname(); err == nil {
		tmpl.DNSNames = append(tmpl.DNSNames, hn)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	} else if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				tmpl.IPAddresses = append(tmpl.IPAddresses, n.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// loadOrMakeCA reads dir/ca.crt and dir/ca.key, making them if absent.
func loadOrMakeCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, "ca.key")
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if err1 == nil && err2 == nil {
		cb, _ := pem.Decode(certPEM)
		kb, _ := pem.Decode(keyPEM)
		if cb == nil || kb == nil {
			return nil, nil, errdefs.Invalid("the local CA in %s is not PEM: move ca.crt and ca.key away to make a new one", dir)
		}
		ca, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			return nil, nil, err
		}
		key, err := x509.ParseECPrivateKey(kb.Bytes)
		return ca, key, err
	}
	if !errors.Is(err1, fs.ErrNotExist) && err1 != nil {
		return nil, nil, err1
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "skiff local CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}
