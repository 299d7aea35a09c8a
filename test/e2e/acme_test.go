package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// pebble builds Let's Encrypt's pebble from test/tools/pebble and starts
// it on loopback as an ACME directory whose validations resolve every
// name to 127.0.0.1 and connect to tlsPort. It returns the directory URL,
// the file of the CA that signs pebble's own listener, and the PEM of the
// root that signs the certificates pebble issues.
func pebble(t *testing.T, tlsPort int) (dir, listenerCA string, issuerRoot []byte) {
	t.Helper()
	tools := filepath.Join(env.repo, "test", "tools", "pebble")
	bin := filepath.Join(env.tmp, "pebble")
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		build.Dir = tools
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build pebble: %v\n%s", err, out)
		}
	}
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2")
	list.Dir = tools
	modDir, err := list.Output()
	if err != nil {
		t.Fatalf("find pebble's module: %v", err)
	}
	certs := filepath.Join(strings.TrimSpace(string(modDir)), "test", "certs")

	// A DNS server that answers every A question with 127.0.0.1, over
	// UDP and TCP on one port (pebble's resolver uses TCP).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	answer := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
					A: net.ParseIP("127.0.0.1")})
			}
		}
		w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: answer}, {Listener: ln, Handler: answer}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}

	port, mgmt := freePort(t), freePort(t)
	conf := filepath.Join(t.TempDir(), "pebble.json")
	writeText(t, conf, fmt.Sprintf(`{"pebble": {"listenAddress": "127.0.0.1:%d", "managementListenAddress": "127.0.0.1:%d",
  "certificate": %q, "privateKey": %q, "httpPort": 1, "tlsPort": %d, "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}`, port, mgmt,
		filepath.Join(certs, "localhost", "cert.pem"), filepath.Join(certs, "localhost", "key.pem"), tlsPort))
	cmd := exec.Command(bin, "-config", conf, "-dnsserver", pc.LocalAddr().String())
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1")
	logf, _ := os.Create(filepath.Join(env.tmp, "pebble.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })

	listenerCA = filepath.Join(certs, "pebble.minica.pem")
	pem, _ := os.ReadFile(listenerCA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	dir = fmt.Sprintf("https://127.0.0.1:%d/dir", port)
	eventually(t, 30*time.Second, "pebble to answer", func() bool {
		res, err := hc.Get(dir)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	res, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	issuerRoot, _ = io.ReadAll(res.Body)
	return dir, listenerCA, issuerRoot
}

// TestACMECertificates gets an App's certificate from an ACME directory
// (pebble) through the TLS-ALPN-01 challenge on the HTTPS ingress,
// keeps local names on the local CA, and reuses the certificate after a
// restart.
func TestACMECertificates(t *testing.T) {
	tlsPort := freePort(t)
	dir, listenerCA, root := pebble(t, tlsPort)
	d, err := startDaemonFrom("acme", env.skiff, "--ingress-tls-addr", fmt.Sprintf("127.0.0.1:%d", tlsPort),
		"--acme-ca", dir, "--acme-ca-root", listenerCA, "--acme-email", "ops@shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, d, helloApp("pub", "1", "  ingress: {host: shop.example.com}\n"))
	applyYAML(t, d, helloApp("loc", "1", ""))
	for _, a := range []string{"pub", "loc"} {
		eventually(t, 30*time.Second, a+" to be ready", appReady(t, d, a))
	}
	issuer := filepath.Join(t.TempDir(), "pebble-root.pem")
	writeText(t, issuer, string(root))

	handshake := func(host string) (*x509.Certificate, error) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(root)
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort),
			&tls.Config{ServerName: host, RootCAs: pool})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0], nil
	}
	leaf, err := handshake("shop.example.com")
	if err != nil {
		b, _ := os.ReadFile(d.Log)
		t.Fatalf("handshake with shop.example.com trusting pebble's root: %v\ndaemon log:\n%s", err, b)
	}
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") || leaf.DNSNames[0] != "shop.example.com" {
		t.Fatalf("certificate of shop.example.com: issuer %q names %v, want pebble's for the host", leaf.Issuer.CommonName, leaf.DNSNames)
	}
	out, err := exec.Command("curl", "-sS", "--max-time", "20", "--cacert", issuer, "--resolve",
		fmt.Sprintf("shop.example.com:%d:127.0.0.1", tlsPort), fmt.Sprintf("https://shop.example.com:%d/", tlsPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "version 1") {
		t.Fatalf("curl https://shop.example.com trusting pebble's root: %v\n%s", err, out)
	}
	// A local name keeps the local CA; a host no App serves gets nothing.
	if _, err := handshake("loc.localhost"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("loc.localhost verified against pebble's root: %v", err)
	}
	if _, err := handshake("nobody.example.com"); err == nil {
		t.Fatal("a host no App serves got a certificate")
	}

	// After a restart the stored certificate is served again, not a new one.
	d.Stop()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "pub to be ready again", appReady(t, d, "pub"))
	again, err := handshake("shop.example.com")
	if err != nil || again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("after a restart: %v, serial %v, want the stored certificate %v", err, again, leaf.SerialNumber)
	}
	b, _ := os.ReadFile(d.Log)
	if n := strings.Count(string(b), "acme: certificate obtained"); n != 1 {
		t.Errorf("the daemon log says %d certificates were obtained, want 1", n)
	}
}
