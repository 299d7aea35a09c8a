package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiauth"
	"skiff.dev/skiff/internal/pki"
)

// APIConfig configures the API over TCP: off unless Addr is set, always
// TLS, every request with a bearer token (skiff token create).
type APIConfig struct {
	// Addr is HOST:PORT to listen on.
	Addr string
	// TLSCert and TLSKey are certificate and key files; without them the
	// certificate comes from skiff's local CA (ROOT/pki/ca.crt).
	TLSCert, TLSKey string
}

// Authentication failures allowed per remote address per window before
// it is refused with 429.
const (
	authFailMax    = 5
	authFailWindow = time.Minute
)

// check refuses a half-given certificate or a bad address.
func (c APIConfig) check() error {
	if c.Addr == "" {
		if c.TLSCert != "" || c.TLSKey != "" {
			return errdefs.Invalid("--api-tls-cert and --api-tls-key need --api-addr")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return errdefs.Invalid("--api-addr %q is not HOST:PORT: %v", c.Addr, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errdefs.Invalid("give both --api-tls-cert and --api-tls-key (or neither, for a certificate from skiff's local CA)")
	}
	return nil
}

// caDir is where skiff's local CA lives under the root.
func caDir(root string) string { return filepath.Join(root, "pki") }

// listenAPITCP opens (or takes over) the TCP API socket, if configured.
func (d *Daemon) listenAPITCP(ctx context.Context) (err error) {
	addr := d.cfg.API.Addr
	if addr == "" {
		return nil
	}
	d.apiTCPLn, err = d.socks.listener(sockAPITCP, func() (net.Listener, error) {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen for the API on %s: %w (choose another --api-addr)", addr, err)
		}
		return l, nil
	})
	return err
}

// apiTLS returns the TLS configuration of the TCP API.
func (d *Daemon) apiTLS() (*tls.Config, error) {
	c := d.cfg.API
	var cert tls.Certificate
	var err error
	if c.TLSCert != "" {
		if cert, err = tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return nil, errdefs.Invalid("load the API's TLS certificate %s and key %s: %v", c.TLSCert, c.TLSKey, err)
		}
	} else if cert, err = pki.ServerCert(caDir(d.cfg.Root), c.Addr, "skiff api"); err != nil {
		return nil, fmt.Errorf("make the API's certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// serveAPITCP serves handler over TLS on the TCP API socket, behind the
// token guard.
func (d *Daemon) serveAPITCP(handler http.Handler) error {
	if d.cfg.API.Addr == "" {
		return nil
	}
	if d.apiTCPLn == nil {
		l, err := d.socks.listener(sockAPITCP, nil)
		if err != nil {
			return err
		}
		d.apiTCPLn = l
	}
	tc, err := d.apiTLS()
	if err != nil {
		return err
	}
	guard := &apiauth.Guard{Next: handler, Tokens: d.db, Events: d.db, Limiter: apiauth.NewLimiter(authFailMax, authFailWindow),
		Now: time.Now, Log: d.log.With("component", "api-tcp")}
	if ids := d.ids.Load(); ids != nil {
		guard.Identities = ids
	}
	d.apiTCP = &http.Server{Handler: d.withIdentityDocs(guard), ReadHeaderTimeout: 30 * time.Second, TLSConfig: tc}
	go func(srv *http.Server, l net.Listener) {
		if err := srv.Serve(tls.NewListener(l, tc)); err != nil && err != http.ErrServerClosed {
			d.log.Error("the API over TCP stopped", "err", err)
		}
	}(d.apiTCP, d.apiTCPLn)
	d.apiTCPLn = nil
	cert := d.cfg.API.TLSCert
	if cert == "" {
		cert = filepath.Join(caDir(d.cfg.Root), pki.CertFileName) + " (CA)"
	}
	d.log.Info("serving the API over TCP", "addr", d.cfg.API.Addr, "cert", cert)
	return nil
}
