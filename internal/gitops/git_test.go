package gitops

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
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
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"skiff.dev/skiff/api/errdefs"
)

// testCAPEM is a self-signed CA certificate.
var testCAPEM = func() string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}()

// TestSSHHostKeyChecked checks the host key callback of an ssh source:
// the listed key passes, another key is a host key mismatch naming the
// file, an unlisted host is unknown, and only the listed key's type is
// asked of the server.
func TestSSHHostKeyChecked(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewPublicKey(hostPub)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[git.example.com]:2222 %s", ssh.MarshalAuthorizedKey(host))), 0o600)

	cred := Credentials{SSHKeyFile: keyFile, KnownHostsFile: kh}
	a, err := cred.auth("ssh://git@git.example.com:2222/team/deploy.git")
	if err != nil {
		t.Fatal(err)
	}
	keys := a.(*gitssh.PublicKeys)
	if got := strings.Join(keys.HostKeyAlgorithms, ","); got != ssh.KeyAlgoED25519 {
		t.Errorf("host key algorithms %q, want only %s (the type known_hosts lists)", got, ssh.KeyAlgoED25519)
	}
	addr := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 2222}
	if err := keys.HostKeyCallback("git.example.com:2222", addr, host); err != nil {
		t.Fatalf("the listed host key: %v", err)
	}
	err = keys.HostKeyCallback("git.example.com:2222", addr, other)
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), "host key mismatch") || !strings.Contains(err.Error(), kh) {
		t.Errorf("another host key: %v, want a host key mismatch naming %s", err, kh)
	}
	err = keys.HostKeyCallback("elsewhere.example.com:22", addr, host)
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), "unknown host") || !strings.Contains(err.Error(), "ssh-keyscan") {
		t.Errorf("an unlisted host: %v, want unknown host", err)
	}
	if _, err := (Credentials{SSHKeyFile: keyFile, KnownHostsFile: filepath.Join(dir, "none")}).auth("ssh://git@h/x"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "--known-hosts") {
		t.Errorf("a missing known hosts file: %v", err)
	}
}

// TestTransportErrorHints checks that refused credentials and an unknown
// certificate authority say which flag fixes them.
func TestTransportErrorHints(t *testing.T) {
	for _, c := range []struct {
		cred Credentials
		err  error
		want []string
	}{
		{Credentials{Token: "x", TokenSecret: "git-token"}, fmt.Errorf("%w: bad", transport.ErrAuthenticationRequired), []string{"HTTP 401", "git-token", "--token-secret"}},
		{Credentials{}, transport.ErrAuthenticationRequired, []string{"HTTP 401", "--token-secret SECRET"}},
		{Credentials{}, transport.ErrAuthorizationFailed, []string{"HTTP 403"}},
		{Credentials{}, x509.UnknownAuthorityError{}, []string{"--ca-file"}},
	} {
		err := c.cred.transportError("list the refs of", "https://h/x.git", c.err)
		if !errors.Is(err, c.err) || !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("%v: not wrapped: %v", c.err, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.err, err, w)
			}
		}
	}
}
