package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/pki"
)

// startTLS serves p over TLS on a loopback port with leaves from a new
// local CA for the hosts p routes; it returns the CA and the address.
func startTLS(t testing.TB, p *Proxy) (*pki.CA, string) {
	t.Helper()
	ca, err := pki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serves := func(h string) bool { _, ok := p.ServesHost(h, "127.0.0.1:1"); return ok }
	if err := p.ServeTLS(ln, &tls.Config{GetCertificate: ca.GetCertificate(serves)}); err != nil {
		t.Fatal(err)
	}
	return ca, ln.Addr().String()
}

// tlsClient trusts ca's root and dials addr whatever the URL's host.
func tlsClient(ca *pki.CA, addr string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestServeTLSWithHTTP2(t *testing.T) {
	rp := newReplica(t, "r1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s path=%s", r.Header.Get("X-Forwarded-Proto"), r.URL.Path)
	})
	p, base := testProxy(t, Config{})
	mustUpdate(t, p, route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint()))
	ca, addr := startTLS(t, p)
	c := tlsClient(ca, addr)
	res, err := c.Get("https://shop.localhost/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 || string(body) != "proto=https path=/x" {
		t.Fatalf("got %d %s %q; want 200 over HTTP/2 with proto=https", res.StatusCode, res.Proto, body)
	}
	// Plain HTTP serves the same route, unredirected.
	if code, body := get(t, base+"/x", "shop.localhost"); code != 200 || body != "proto=http path=/x" {
		t.Fatalf("plain HTTP: %d %q", code, body)
	}
	// No certificate for a host no route serves: the handshake fails.
	if _, err := c.Get("https://evil.localhost/"); err == nil {
		t.Fatal("TLS handshake for an unrouted host succeeded")
	}
	// A client that does not trust the CA is refused.
	plain := &http.Client{Transport: &http.Transport{DialContext: tlsClient(ca, addr).Transport.(*http.Transport).DialContext}}
	if _, err := plain.Get("https://shop.localhost/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("client without the CA: err %v; want a certificate error", err)
	}
}

func TestRedirectHTTPSPerRoute(t *testing.T) {
	rp := newReplica(t, "r1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	forEachPath(t, func(t *testing.T, start func(Config) (*Proxy, string)) {
		p, base := start(Config{})
		secure := route1("secure", "secure-1", []string{"secure.localhost"}, rp.endpoint())
		secure.RedirectHTTPS = true
		mustUpdate(t, p, secure, route1("open", "open-1", []string{"open.localhost"}))
		// Without a TLS listener there is nowhere to redirect to.
		if code, body := get(t, base+"/a?b=c", "secure.localhost"); code != 200 || body != "ok" {
			t.Fatalf("before ServeTLS: %d %q", code, body)
		}
		_, addr := startTLS(t, p)
		_, port, _ := net.SplitHostPort(addr)
		req := mustRequest(t, "GET", base+"/a?b=c", "secure.localhost", nil)
		res, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := "https://secure.localhost:" + port + "/a?b=c"
		if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
			t.Fatalf("got %d Location %q; want 308 to %s", res.StatusCode, res.Header.Get("Location"), want)
		}
	})
}

func TestServesHostNamesRouteFiles(t *testing.T) {
	p, _ := testProxy(t, Config{})
	withFiles := route1("a", "a-1", []string{"a.localhost"})
	withFiles.TLS = &TLSFiles{CertFile: "/c.pem", KeyFile: "/k.pem"}
	internal := route1("i", "i-1", []string{"i.localhost"})
	internal.Internal = true
	mustUpdate(t, p, withFiles, route1("b", "b-1", []string{"b.localhost"}), internal)
	const remote, local = "192.0.2.7:5000", "127.0.0.1:5000"
	if f, ok := p.ServesHost("A.localhost:8443", remote); !ok || f == nil || f.CertFile != "/c.pem" {
		t.Fatalf("a: %v %v", f, ok)
	}
	if f, ok := p.ServesHost("b.localhost", remote); !ok || f != nil {
		t.Fatalf("b: %v %v", f, ok)
	}
	if _, ok := p.ServesHost("c.localhost", local); ok {
		t.Fatal("c: served")
	}
	// An internal App's host is unknown to clients from elsewhere, as
	// its requests are: no certificate names it for them.
	if _, ok := p.ServesHost("i.localhost", local); !ok {
		t.Fatal("internal route not served to a loopback client")
	}
	if _, ok := p.ServesHost("i.localhost", remote); ok {
		t.Fatal("internal route served to a client from elsewhere")
	}
}
