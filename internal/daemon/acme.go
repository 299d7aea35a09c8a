package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"

	"skiff.dev/skiff/api/errdefs"
)

// ACMEConfig names an ACME directory (RFC 8555: Let's Encrypt, ZeroSSL,
// a company's own) from which the HTTPS ingress gets the certificates of
// Apps' public host names.
//
// Contract:
//   - Only hosts that an App's route serves and that are not local names
//     (localhost, *.localhost, *.local, *.internal, *.home.arpa, IP
//     addresses; those keep skiff's local CA) and that name no
//     certificate files get ACME certificates, as Caddy's automatic
//     HTTPS does.
//   - A certificate is obtained at the first TLS handshake for its host
//     (that handshake waits for it), kept under Root/acme, and renewed
//     before it expires; a restarted daemon reuses it.
//   - The challenge is TLS-ALPN-01, answered on the HTTPS ingress's own
//     listener: the directory must reach that port on the host's
//     address (port 443 for a public CA).
type ACMEConfig struct {
	// CA is the directory URL, e.g.
	// https://acme-v02.api.letsencrypt.org/directory. Empty: no ACME.
	CA string
	// Email is the account's contact address (optional).
	Email string
	// CARoot is a PEM file of root certificates to trust, besides the
	// system's, when talking to the directory (for a private ACME CA).
	CARoot string
}

func (c ACMEConfig) check(tlsAddr string) error {
	if c.CA == "" {
		if c.Email != "" || c.CARoot != "" {
			return errdefs.Invalid("--acme-email and --acme-ca-root need --acme-ca URL: the ACME directory to get certificates from")
		}
		return nil
	}
	u, err := url.Parse(c.CA)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return errdefs.Invalid("--acme-ca %q is not an https:// URL: give the ACME directory's URL, like https://acme-v02.api.letsencrypt.org/directory", c.CA)
	}
	if tlsAddr == "" {
		return errdefs.Invalid("--acme-ca needs --ingress-tls-addr: the certificates are served, and the challenges answered, on the HTTPS ingress")
	}
	if c.CARoot != "" {
		if _, err := readRoots(c.CARoot); err != nil {
			return err
		}
	}
	return nil
}

func readRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, errdefs.Invalid("--acme-ca-root: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, errdefs.Invalid("--acme-ca-root %s holds no PEM certificate", file)
	}
	return pool, nil
}

// localName says whether host is a name only this machine or network
// can resolve, for which no public CA would issue a certificate.
func localName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || !strings.Contains(host, ".") {
		return true
	}
	for _, s := range []string{".localhost", ".local", ".internal", ".home.arpa"} {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// acmeCerts gets and renews certificates from an ACME directory.
type acmeCerts struct {
	magic *certmagic.Config
	cache *certmagic.Cache
}

// newACME makes the ACME client of the HTTPS ingress listening on
// tlsAddr; serves says whether a route serves a host now.
func newACME(root string, c ACMEConfig, tlsAddr string, serves func(host string) bool, log *slog.Logger) (*acmeCerts, error) {
	host, port, err := net.SplitHostPort(tlsAddr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if c.CARoot != "" {
		if roots, err = readRoots(c.CARoot); err != nil {
			return nil, err
		}
	}
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zap.NewNop(),
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(root, "acme")},
		Logger:  zap.NewNop(),
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: func(_ context.Context, name string) error {
			if localName(name) || !serves(name) {
				return fmt.Errorf("no App serves %s over HTTPS", name)
			}
			return nil
		}},
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			switch event {
			case "cert_obtained", "cert_renewed":
				log.Info("acme: certificate "+strings.TrimPrefix(event, "cert_"), "host", data["identifier"], "issuer", data["issuer"])
			case "cert_failed":
				log.Error("acme: cannot get a certificate", "host", data["identifier"], "err", data["error"])
			}
			return nil
		},
	})
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                   c.CA,
		Email:                c.Email,
		Agreed:               true,
		DisableHTTPChallenge: true,
		// The ingress's TLS listener answers the challenge through
		// GetCertificate: certmagic finds the port taken and relies on it.
		ListenHost:     host,
		AltTLSALPNPort: p,
		TrustedRoots:   roots,
		Logger:         zap.NewNop(),
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	return &acmeCerts{magic: magic, cache: cache}, nil
}

// challenge says whether hello is an ACME server's TLS-ALPN-01
// validation, which only the ACME client can answer.
func challenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol
}

// getCertificate answers a handshake with the host's ACME certificate,
// obtaining it first if needed, or a validation's challenge certificate.
func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// stop ends the renewals.
func (a *acmeCerts) stop() {
	if a != nil {
		a.cache.Stop()
	}
}
