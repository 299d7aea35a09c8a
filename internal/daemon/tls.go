package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/mholt/acmez/v3"

	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/pki"
)

// ingressTLS is the ingress's HTTPS side (Config.IngressTLSAddr).
type ingressTLS struct {
	ln    net.Listener // until serveIngressTLS
	addr  string       // where it listens; "" without HTTPS
	ca    *pki.CA
	files pki.FileCerts
	acme  *acmeCerts // nil without --acme-ca
}

// caFile is the path of the local CA's root certificate, or "".
func (t *ingressTLS) caFile() string {
	if t.ca == nil {
		return ""
	}
	return t.ca.CertFile()
}

// caCert is the local CA's root certificate in PEM, or "".
func (t *ingressTLS) caCert() string {
	if t.ca == nil {
		return ""
	}
	return string(t.ca.CertPEM())
}

// listenIngressTLS opens (or takes from the daemon before) the HTTPS
// listener and opens the local CA, when HTTPS is asked for.
func (d *Daemon) listenIngressTLS(ctx context.Context) (err error) {
	addr := d.cfg.IngressTLSAddr
	if addr == "" && !d.socks.has(sockIngressTLS) {
		return nil
	}
	if d.tls.ca, err = pki.Open(caDir(d.cfg.Root)); err != nil {
		return err
	}
	if d.tls.ln, err = d.socks.listener(sockIngressTLS, func() (net.Listener, error) {
		l, err := ingress.Listen(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("start the HTTPS ingress on %s: %w (choose another address with --ingress-tls-addr)", addr, err)
		}
		return l, nil
	}); err != nil {
		return err
	}
	d.tls.addr = d.tls.ln.Addr().String()
	if d.cfg.ACME.CA != "" {
		serves := func(host string) bool {
			// Any route, internal ones too: the handshake that asks
			// was already checked against its client's address.
			_, ok := d.proxy.ServesHost(host, "127.0.0.1:0")
			return ok
		}
		if d.tls.acme, err = newACME(d.cfg.Root, d.cfg.ACME, d.tls.addr, serves, d.log); err != nil {
			return err
		}
	}
	return nil
}

// serveIngressTLS starts serving HTTPS on the listener opened by
// listenIngressTLS, if any.
func (d *Daemon) serveIngressTLS() error {
	if d.tls.ln == nil {
		return nil
	}
	conf := &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		remote := ""
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		if d.tls.acme != nil && challenge(hello) {
			return d.tls.acme.getCertificate(hello)
		}
		files, served := d.proxy.ServesHost(hello.ServerName, remote)
		if files != nil && hello.ServerName != "" {
			c, err := d.tls.files.Get(files.CertFile, files.KeyFile)
			if err != nil {
				d.log.Error("ingress: cannot serve an App's certificate", "host", hello.ServerName, "err", err)
			}
			return c, err
		}
		if served && d.tls.acme != nil && !localName(hello.ServerName) {
			return d.tls.acme.getCertificate(hello)
		}
		// The CA refuses a handshake without a name or for a host no
		// route serves to this client.
		return d.tls.ca.GetCertificate(func(string) bool { return served })(hello)
	}}
	if d.tls.acme != nil {
		// ACME's TLS-ALPN-01 validations arrive on this listener.
		conf.NextProtos = []string{"h2", "http/1.1", acmez.ACMETLS1Protocol}
	}
	if err := d.proxy.ServeTLS(d.tls.ln, conf); err != nil {
		return err
	}
	d.tls.ln = nil
	return nil
}
