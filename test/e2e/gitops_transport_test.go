package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/internal/pki"
)

// transportApp is a small App that needs no replica running.
func transportApp(name, version string) string {
	return fmt.Sprintf("apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: %s}\nspec:\n  image: hello\n  env: [{name: VERSION, value: %q}]\n  scale: {min: 0}\n", name, version)
}

// sshd is a loopback OpenSSH server of the test's own.
type sshd struct {
	port               int
	hostPub            string // the host's public key line
	clientKey          string // a private key the server accepts for root
	log, uploadPackLog string
}

// startSSHD starts /usr/sbin/sshd on 127.0.0.1 with a configuration,
// host key and authorized key in a temporary directory. Every command
// run over it has its standard input copied to uploadPackLog first, so
// the test reads what go-git asked git-upload-pack for.
func startSSHD(t *testing.T) *sshd {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/sshd"); err != nil {
			t.Fatal("sshd is not installed (Debian's openssh-server): run make deps-test")
		}
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		return p
	}
	hostKey, clientKey := keygen("host_key"), keygen("client_key")
	hostPub, _ := os.ReadFile(hostKey + ".pub")
	clientPub, _ := os.ReadFile(clientKey + ".pub")
	auth := filepath.Join(dir, "authorized_keys")
	os.WriteFile(auth, clientPub, 0o600)
	s := &sshd{port: freePort(t), hostPub: strings.TrimSpace(string(hostPub)), clientKey: clientKey,
		log: filepath.Join(dir, "sshd.log"), uploadPackLog: filepath.Join(dir, "upload-pack.in")}
	wrap := filepath.Join(dir, "tee-command")
	os.WriteFile(wrap, []byte("#!/bin/sh\ntee -a "+s.uploadPackLog+" | sh -c \"$SSH_ORIGINAL_COMMAND\"\n"), 0o755)
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
ForceCommand %s
`, s.port, hostKey, auth, filepath.Join(dir, "sshd.pid"), wrap)), 0o600)
	// sshd refuses to start without its privilege separation directory.
	os.MkdirAll("/run/sshd", 0o755)
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	eventually(t, 10*time.Second, "sshd listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

// knownHosts writes a known_hosts file listing key (a public key line)
// for the server.
func (s *sshd) knownHosts(t *testing.T, file, key string) {
	t.Helper()
	f := strings.Fields(key)
	line := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.port, f[0], f[1])
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGitopsSSH syncs a source over ssh:// from a loopback sshd with a
// private key and a known_hosts file: a shallow fetch, and a changed host
// key refused, changing nothing.
func TestGitopsSSH(t *testing.T) {
	d := env.daemon
	srv := startSSHD(t)
	root := t.TempDir()
	repo := newGitRepo(t, root, "deploy")
	repo.commit("one", map[string]string{"apps/a.yaml": transportApp("ssh-a", "1")})
	c2 := repo.commit("two", map[string]string{"apps/a.yaml": transportApp("ssh-a", "2")})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	srv.knownHosts(t, kh, srv.hostPub)
	t.Cleanup(func() {
		d.Run("", "source", "rm", "ssh-src")
		d.Run("", "delete", "app", "ssh-a")
	})
	url := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", srv.port, repo.dir)
	r := d.Run("", "source", "add", "ssh-src", "--git", url, "--path", "apps", "--interval", "1h",
		"--ssh-key", srv.clientKey, "--known-hosts", kh)
	if r.Code != 0 || !strings.Contains(r.Stdout, "app/ssh-a created") || !strings.Contains(r.Stdout, "source/ssh-src at "+c2[:12]+": Applied") {
		log, _ := os.ReadFile(srv.log)
		t.Fatalf("source add over ssh: %s\nsshd log:\n%s", r, log)
	}
	if v := envValue(getApp(t, d, "ssh-a"), "VERSION"); v != "2" {
		t.Fatalf("ssh-a at version %s, want 2", v)
	}
	in, _ := os.ReadFile(srv.uploadPackLog)
	if !bytes.Contains(in, []byte("want "+c2)) || !bytes.Contains(in, []byte("deepen 1")) {
		t.Fatalf("the fetch over ssh is not shallow (want %s, deepen 1); git-upload-pack read:\n%q", c2, in)
	}

	t.Run("a changed host key is refused and changes nothing", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other")
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		pub, _ := os.ReadFile(other + ".pub")
		srv.knownHosts(t, kh, string(pub))
		repo.commit("three", map[string]string{"apps/a.yaml": transportApp("ssh-a", "3")})
		fails(t, d, []string{"host key mismatch", kh, fmt.Sprintf("127.0.0.1:%d", srv.port)}, "source", "sync", "ssh-src")
		if v := envValue(getApp(t, d, "ssh-a"), "VERSION"); v != "2" {
			t.Fatalf("a refused host changed ssh-a to version %s", v)
		}
		if s := getSource(t, d, "ssh-src"); s.Status.Commit != c2 {
			t.Fatalf("source at %s after a refused host, want %s", s.Status.Commit, c2)
		}
		os.WriteFile(kh, nil, 0o600)
		fails(t, d, []string{"unknown host", "ssh-keyscan"}, "source", "sync", "ssh-src")
		srv.knownHosts(t, kh, srv.hostPub)
		if out := must(t, d, "source", "sync", "ssh-src"); !strings.Contains(out, "app/ssh-a configured") {
			t.Fatalf("sync with the right host key:\n%s", out)
		}
	})
}

// gitUploadLog records the bodies of git-upload-pack requests.
type gitUploadLog struct {
	mu     sync.Mutex
	bodies []string
}

func (l *gitUploadLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.bodies, "\n")
}

// serveGitTLS serves the repositories under root like serveGit, over TLS
// with a certificate from a CA of its own, to basic-auth callers whose
// password is token. It returns the base URL, the CA's PEM file and the
// log of upload-pack requests.
func serveGitTLS(t *testing.T, root, token string) (string, string, *gitUploadLog) {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is not installed: run make deps-test")
	}
	ca, err := pki.Open(filepath.Join(t.TempDir(), "git-ca"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{Path: gitPath, Root: "/git", Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	uploads := &gitUploadLog{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			body, _ := io.ReadAll(r.Body)
			plain := body
			if r.Header.Get("Content-Encoding") == "gzip" {
				if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
					plain, _ = io.ReadAll(zr)
				}
			}
			uploads.mu.Lock()
			uploads.bodies = append(uploads.bodies, string(plain))
			uploads.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		backend.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{*leaf}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String() + "/git", ca.CertFile(), uploads
}

// TestGitopsHTTPSToken syncs a source over HTTPS from a git host whose
// certificate a private CA signed (--ca-file) and that wants a token
// (--token-secret): a shallow fetch, then refusals that name what to fix.
func TestGitopsHTTPSToken(t *testing.T) {
	d := env.daemon
	const token = "tok-3f9a1c"
	root := t.TempDir()
	repo := newGitRepo(t, root, "deploy")
	repo.commit("one", map[string]string{"a.yaml": transportApp("https-a", "1")})
	c2 := repo.commit("two", map[string]string{"a.yaml": transportApp("https-a", "2")})
	base, caFile, uploads := serveGitTLS(t, root, token)
	must(t, d, "secret", "create", "https-git-token", "--from-literal", "token="+token)
	must(t, d, "secret", "create", "https-git-wrong", "--from-literal", "token=not-it")
	t.Cleanup(func() {
		for _, s := range []string{"https-src", "https-noca", "https-wrong", "https-none"} {
			d.Run("", "source", "rm", s)
		}
		d.Run("", "delete", "app", "https-a")
		d.Run("", "secret", "rm", "https-git-token")
		d.Run("", "secret", "rm", "https-git-wrong")
	})
	url := base + "/deploy"
	out := must(t, d, "source", "add", "https-src", "--git", url, "--interval", "1h", "--token-secret", "https-git-token", "--ca-file", caFile)
	if !strings.Contains(out, "app/https-a created") || !strings.Contains(out, "source/https-src at "+c2[:12]+": Applied") {
		t.Fatalf("source add over https:\n%s", out)
	}
	if s := getSource(t, d, "https-src"); !strings.Contains(s.Spec.CABundle, "BEGIN CERTIFICATE") {
		t.Fatalf("the source does not keep the CA bundle: %q", s.Spec.CABundle)
	}
	if body := uploads.all(); !strings.Contains(body, "want "+c2) || !strings.Contains(body, "deepen 1") {
		t.Fatalf("the fetch over https is not shallow (want %s, deepen 1); upload-pack requests:\n%q", c2, body)
	}

	t.Run("refusals name what to fix", func(t *testing.T) {
		fails(t, d, []string{"--ca-file", "certificate"}, "source", "add", "https-noca", "--git", url, "--interval", "1h", "--token-secret", "https-git-token")
		fails(t, d, []string{"HTTP 401", "https-git-wrong", "--token-secret"}, "source", "add", "https-wrong", "--git", url, "--interval", "1h",
			"--token-secret", "https-git-wrong", "--ca-file", caFile)
		fails(t, d, []string{"HTTP 401", "--token-secret SECRET"}, "source", "add", "https-none", "--git", url, "--interval", "1h", "--ca-file", caFile)
		fails(t, d, []string{"--ca-file", "no PEM certificate"}, "source", "add", "https-badca", "--git", url, "--ca-file", "/etc/hostname")
		if d.Run("", "source", "describe", "https-badca").Code == 0 {
			t.Fatal("a source with a bad --ca-file was added")
		}
		if v := envValue(getApp(t, d, "https-a"), "VERSION"); v != "2" {
			t.Fatalf("refused sources changed https-a to version %s", v)
		}
	})
}
