package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/pki"
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
const CAFile = pki.CertFileName

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
	return pki.ServerCert(dir, addr, "skiff registry")
}
