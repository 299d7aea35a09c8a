package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The registry tests share one daemon serving its store on a loopback
// port, with deletes on, a user and an anonymous-read pattern.
const (
	regUser = "tester"
	regPass = "s3cret-pass"
)

var (
	regOnce   sync.Once
	regDaemon *Daemon
	regAddr   string
	regErr    error
)

// loopbackAddr returns a loopback address nothing listens on.
func loopbackAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// newRegistryDaemon starts a daemon serving the registry on addr with
// the given extra flags, and a user.
func newRegistryDaemon(t *testing.T, name, addr string, extra ...string) (*Daemon, error) {
	t.Helper()
	d := &Daemon{
		Name:   name,
		Root:   filepath.Join(env.tmp, "root-"+name),
		Socket: filepath.Join(env.tmp, name+".sock"),
		Log:    filepath.Join(env.tmp, name+".log"),
		Args:   append([]string{"--registry-addr", addr}, extra...),
	}
	if r := d.Run(regPass+"\n", "registry", "user", "add", regUser, "--root", d.Root); r.Code != 0 || !strings.Contains(r.Stdout, "saved") {
		return nil, fmt.Errorf("registry user add: %s", r)
	}
	extraDaemons = append(extraDaemons, d)
	return d, d.Start()
}

// registry returns the shared registry daemon and its address.
func registry(t *testing.T) (*Daemon, string) {
	t.Helper()
	regOnce.Do(func() {
		regAddr = loopbackAddr(t)
		regDaemon, regErr = newRegistryDaemon(t, "registry", regAddr, "--registry-delete", "--registry-anonymous-read", "public/*")
		if regErr == nil {
			regErr = buildSubset(regDaemon, "hello")
		}
	})
	if regErr != nil {
		t.Fatal(regErr)
	}
	return regDaemon, regAddr
}

// regRequest sends one request to the registry, with the test user's
// credentials when auth is set.
func regRequest(t *testing.T, method, url string, body io.Reader, auth bool, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(regUser, regPass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// expect checks a response's status and that its body contains want.
func expect(t *testing.T, resp *http.Response, status int, want string) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || !strings.Contains(string(b), want) {
		t.Fatalf("%s %s: got %d %s, want %d with %q", resp.Request.Method, resp.Request.URL, resp.StatusCode, b, status, want)
	}
	return string(b)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushBlob pushes b with POST then PUT and returns its digest.
func pushBlob(t *testing.T, addr, repo string, b []byte) string {
	t.Helper()
	resp := regRequest(t, "POST", "http://"+addr+"/v2/"+repo+"/blobs/uploads/", nil, true)
	expect(t, resp, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	d := sha(b)
	expect(t, regRequest(t, "PUT", "http://"+addr+loc+"?digest="+d, bytes.NewReader(b), true), http.StatusCreated, "")
	return d
}

// TestRegistryConformance runs the OCI distribution-spec conformance
// suite (all four workflows, every optional API it has) against the
// daemon's registry and keeps its report in the test output. Only its
// "sparse" data set stays off (as by default): the registry refuses a
// manifest naming blobs it lacks, so that a pushed image runs at once.
func TestRegistryConformance(t *testing.T) {
	_, addr := registry(t)
	bin := filepath.Join(env.tmp, "oci-conformance")
	build := exec.Command("go", "build", "-o", bin, "github.com/opencontainers/distribution-spec/conformance")
	build.Dir = filepath.Join(env.repo, "test", "tools", "conformance")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the conformance suite: %v\n%s", err, out)
	}
	results := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+addr, "OCI_TLS=disabled",
		"OCI_USERNAME="+regUser, "OCI_PASSWORD="+regPass,
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_RESULTS_DIR="+results,
		"OCI_API_PULL=true", "OCI_API_PUSH=true",
		"OCI_API_BLOBS_DELETE=true", "OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_DELETE=true", "OCI_API_MANIFESTS_TAG_PARAM=true", "OCI_API_TAGS_DELETE=true", "OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("OCI distribution-spec conformance report:\n%s", out)
	if err != nil {
		t.Fatalf("the conformance suite failed: %v", err)
	}
	for _, want := range []string{
		"OCI Conformance Result: Pass", "FAIL..........................:          0",
		"Blob upload cancel............:       Pass", "Blob mount....................:       Pass",
		"Tag delete....................:       Pass", "Referrers.....................:       Pass",
		"Manifest put with tag params..:       Pass", "Digest Algorithm sha512.......:       Pass",
	} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the conformance report lacks %q", want)
		}
	}
	if strings.Contains(string(out), ": Fail") || strings.Contains(string(out), ": Error") {
		t.Fatal("the conformance report has failures")
	}
}

// digestOf returns the manifest digest skopeo reports for ref.
func skopeoDigest(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("skopeo", append([]string{"inspect", "--format", "{{.Digest}}"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func skopeo(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
}

// TestRegistrySkopeoRoundTrip: an OCI archive copied into the registry
// by skopeo is an image skiff lists and runs at once; copied out again
// to an OCI layout it has the same digest.
func TestRegistrySkopeoRoundTrip(t *testing.T) {
	d, addr := registry(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "hello.tar")
	skopeo(t, "copy", "oci:"+filepath.Join(d.Root, "images")+":localhost/hello:latest", "oci-archive:"+archive)
	want := skopeoDigest(t, "oci-archive:"+archive)
	creds := regUser + ":" + regPass
	skopeo(t, "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci-archive:"+archive, "docker://"+addr+"/skopeo/hello:1.0")
	if got := skopeoDigest(t, "--tls-verify=false", "--creds", creds, "docker://"+addr+"/skopeo/hello:1.0"); got != want {
		t.Fatalf("digest in the registry %s, in the archive %s", got, want)
	}
	if out := must(t, d, "image", "ls"); !strings.Contains(out, "localhost/skopeo/hello") {
		t.Fatalf("the pushed image is not in skiff image ls:\n%s", out)
	}
	if r := d.Run("", "run", "--rm", "skopeo/hello:1.0", "-print", "pushed-by-skopeo"); r.Code != 0 || r.Stdout != "pushed-by-skopeo\n" {
		t.Fatalf("run the pushed image: %s", r)
	}
	layout := filepath.Join(dir, "layout")
	skopeo(t, "copy", "--src-tls-verify=false", "--src-creds", creds, "docker://"+addr+"/skopeo/hello:1.0", "oci:"+layout+":out")
	if got := skopeoDigest(t, "oci:"+layout+":out"); got != want {
		t.Fatalf("digest copied out %s, copied in %s", got, want)
	}
	// An image skiff built is pullable under its short name.
	skopeo(t, "copy", "--src-tls-verify=false", "--src-creds", creds, "docker://"+addr+"/hello:latest", "oci:"+layout+":built")
}

// TestRegistryPeerDockerRegistry: images go from skiff to Debian's
// docker-registry and back with skopeo, digests unchanged.
func TestRegistryPeerDockerRegistry(t *testing.T) {
	_, addr := registry(t)
	peer := startRegistry(t)
	creds := regUser + ":" + regPass
	want := skopeoDigest(t, "--tls-verify=false", "--creds", creds, "docker://"+addr+"/hello:latest")
	skopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "docker://"+addr+"/hello:latest", "docker://"+peer+"/team/hello:peer")
	if got := skopeoDigest(t, "--tls-verify=false", "docker://"+peer+"/team/hello:peer"); got != want {
		t.Fatalf("digest at the peer %s, at skiff %s", got, want)
	}
	skopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds, "docker://"+peer+"/team/hello:peer", "docker://"+addr+"/back/hello:1")
	if got := skopeoDigest(t, "--tls-verify=false", "--creds", creds, "docker://"+addr+"/back/hello:1"); got != want {
		t.Fatalf("digest back at skiff %s, want %s", got, want)
	}
}

// TestRegistryGoContainerRegistry: go-containerregistry's remote package
// (what crane and many tools use) pushes and pulls an image and a
// multi-platform index by tag and digest.
func TestRegistryGoContainerRegistry(t *testing.T) {
	d, addr := registry(t)
	auth := remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass})
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(addr+"/ggcr/random:v1", name.Insecure)
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()
	desc, err := remote.Get(ref, auth)
	if err != nil || desc.Digest != want {
		t.Fatalf("pull by tag: %v, digest %v want %v", err, desc, want)
	}
	byDigest, _ := name.ParseReference(addr+"/ggcr/random@"+want.String(), name.Insecure)
	pulled, err := remote.Image(byDigest, auth)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := pulled.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, rc)
		rc.Close()
		ld, _ := l.Digest()
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != ld.String() {
			t.Fatalf("layer pulled with digest %s, want %s", got, ld)
		}
	}
	idx, err := random.Index(1024, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	iref, _ := name.ParseReference(addr+"/ggcr/index:multi", name.Insecure)
	if err := remote.WriteIndex(iref, idx, auth); err != nil {
		t.Fatalf("push index: %v", err)
	}
	iwant, _ := idx.Digest()
	if desc, err := remote.Get(iref, auth); err != nil || desc.Digest != iwant || !desc.MediaType.IsIndex() {
		t.Fatalf("pull index: %v %v", err, desc)
	}
	tags, err := remote.List(ref.Context(), auth)
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags: %v %v", tags, err)
	}
	if out := must(t, d, "image", "ls"); !strings.Contains(out, "localhost/ggcr/random") {
		t.Fatalf("pushed image missing from image ls:\n%s", out)
	}
}

// TestRegistryAccess: writes need credentials, reads too except for the
// anonymous-read pattern; a wrong password is refused.
func TestRegistryAccess(t *testing.T) {
	_, addr := registry(t)
	base := "http://" + addr
	resp := regRequest(t, "POST", base+"/v2/public/x/blobs/uploads/", nil, false)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("no basic-auth challenge on an anonymous write")
	}
	expect(t, resp, http.StatusUnauthorized, "UNAUTHORIZED")
	req, _ := http.NewRequest("GET", base+"/v2/", nil)
	req.SetBasicAuth(regUser, "wrong")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r2, http.StatusUnauthorized, "wrong user name or password")
	expect(t, regRequest(t, "GET", base+"/v2/", nil, true), http.StatusOK, "{}")

	cfg := pushBlob(t, addr, "public/x", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	mf := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":80},"layers":[]}`, cfg)
	for _, repo := range []string{"public/x", "private/x"} {
		expect(t, regRequest(t, "PUT", base+"/v2/"+repo+"/manifests/v1", strings.NewReader(mf), true, "Content-Type", "application/vnd.oci.image.manifest.v1+json"), http.StatusCreated, "")
	}
	expect(t, regRequest(t, "GET", base+"/v2/public/x/manifests/v1", nil, false), http.StatusOK, cfg)
	expect(t, regRequest(t, "GET", base+"/v2/private/x/manifests/v1", nil, false), http.StatusUnauthorized, "authentication required")
	expect(t, regRequest(t, "GET", base+"/v2/private/x/manifests/v1", nil, true), http.StatusOK, cfg)
}

// TestRegistryBadInput: a wrong digest, an oversized manifest, path
// traversal in names, concurrent identical pushes and a reused upload
// session are each refused or handled with the store left whole.
func TestRegistryBadInput(t *testing.T) {
	d, addr := registry(t)
	base := "http://" + addr
	blob := bytes.Repeat([]byte("skiff registry "), 4096)
	good := sha(blob)

	t.Run("wrong digest", func(t *testing.T) {
		resp := regRequest(t, "POST", base+"/v2/bad/x/blobs/uploads/", nil, true)
		expect(t, resp, http.StatusAccepted, "")
		loc := resp.Header.Get("Location")
		wrong := sha([]byte("something else"))
		expect(t, regRequest(t, "PUT", base+loc+"?digest="+wrong, bytes.NewReader(blob), true), http.StatusBadRequest, "DIGEST_INVALID")
		expect(t, regRequest(t, "HEAD", base+"/v2/bad/x/blobs/"+wrong, nil, true), http.StatusNotFound, "")
		expect(t, regRequest(t, "PUT", base+"/v2/bad/x/manifests/"+wrong, strings.NewReader(`{"schemaVersion":2}`), true, "Content-Type", "application/vnd.oci.image.manifest.v1+json"), http.StatusBadRequest, "DIGEST_INVALID")
	})
	t.Run("oversized manifest", func(t *testing.T) {
		big := `{"schemaVersion":2,"annotations":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`
		expect(t, regRequest(t, "PUT", base+"/v2/bad/x/manifests/big", strings.NewReader(big), true, "Content-Type", "application/vnd.oci.image.manifest.v1+json"), http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	})
	t.Run("manifest naming a missing blob", func(t *testing.T) {
		mf := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":3},"layers":[]}`, sha([]byte("nope")))
		expect(t, regRequest(t, "PUT", base+"/v2/bad/x/manifests/missing", strings.NewReader(mf), true, "Content-Type", "application/vnd.oci.image.manifest.v1+json"), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	})
	t.Run("path traversal", func(t *testing.T) {
		for _, p := range []string{"/v2/../../etc/manifests/latest", "/v2/a/../b/manifests/latest", "/v2/a/%2e%2e/b/tags/list", "/v2/A/x/tags/list", "/v2/a//b/tags/list"} {
			req, _ := http.NewRequest("GET", base+"/", nil)
			req.URL.Opaque = p
			req.SetBasicAuth(regUser, regPass)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "NAME_INVALID") {
				t.Fatalf("%s: got %d %s, want 404 NAME_INVALID", p, resp.StatusCode, b)
			}
		}
	})
	t.Run("concurrent identical pushes", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", base+"/v2/bad/same/blobs/uploads/?digest="+good, bytes.NewReader(blob))
				req.SetBasicAuth(regUser, regPass)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs <- resp.Status
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatalf("a concurrent push failed: %s", e)
		}
		body := expect(t, regRequest(t, "GET", base+"/v2/bad/same/blobs/"+good, nil, true), http.StatusOK, "skiff registry")
		if sha([]byte(body)) != good {
			t.Fatal("the blob served after concurrent pushes is not the content pushed")
		}
		left, _ := os.ReadDir(filepath.Join(d.Root, "images", ".tmp", "uploads"))
		if len(left) != 0 {
			t.Fatalf("uploads left behind: %d files", len(left))
		}
	})
	t.Run("session reuse", func(t *testing.T) {
		resp := regRequest(t, "POST", base+"/v2/bad/x/blobs/uploads/", nil, true)
		expect(t, resp, http.StatusAccepted, "")
		loc := resp.Header.Get("Location")
		expect(t, regRequest(t, "PUT", base+loc+"?digest="+good, bytes.NewReader(blob), true), http.StatusCreated, "")
		expect(t, regRequest(t, "PATCH", base+loc, strings.NewReader("more"), true), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		expect(t, regRequest(t, "PUT", base+loc+"?digest="+good, bytes.NewReader(blob), true), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		expect(t, regRequest(t, "GET", base+loc, nil, true), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	})
}

// TestRegistryKillMidUpload: a daemon killed while a blob is being
// uploaded (a session with a chunk, and a monolithic PUT cut short)
// serves no such blob after it restarts, keeps no partial file, and
// takes the same push whole afterwards.
func TestRegistryKillMidUpload(t *testing.T) {
	addr := loopbackAddr(t)
	d, err := newRegistryDaemon(t, "registry-kill", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	base := "http://" + addr
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	dg := sha(blob)
	resp := regRequest(t, "POST", base+"/v2/kill/x/blobs/uploads/", nil, true)
	expect(t, resp, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	expect(t, regRequest(t, "PATCH", base+loc, bytes.NewReader(blob[:len(blob)/2]), true, "Content-Range", fmt.Sprintf("0-%d", len(blob)/2-1)), http.StatusAccepted, "")

	// A monolithic upload whose body stops half-way.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, _ := http.NewRequest("POST", base+"/v2/kill/x/blobs/uploads/?digest="+dg, nil)
	req.SetBasicAuth(regUser, regPass)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n", req.URL.RequestURI(), addr, req.Header.Get("Authorization"), len(blob))
	c.Write(blob[:len(blob)/3])
	eventually(t, 5*time.Second, "both uploads to be on disk", func() bool {
		ents, _ := os.ReadDir(filepath.Join(d.Root, "images", ".tmp", "uploads"))
		return len(ents) == 2
	})
	d.Kill()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	expect(t, regRequest(t, "HEAD", base+"/v2/kill/x/blobs/"+dg, nil, true), http.StatusNotFound, "")
	if _, err := os.Stat(filepath.Join(d.Root, "images", "blobs", "sha256", strings.TrimPrefix(dg, "sha256:"))); !os.IsNotExist(err) {
		t.Fatalf("a blob file exists after the kill: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Root, "images", ".tmp", "uploads"))
	if len(ents) != 0 {
		t.Fatalf("%d unfinished uploads survived the restart", len(ents))
	}
	expect(t, regRequest(t, "PATCH", base+loc, bytes.NewReader(blob[len(blob)/2:]), true), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	pushBlob(t, addr, "kill/x", blob)
	body := expect(t, regRequest(t, "GET", base+"/v2/kill/x/blobs/"+dg, nil, true), http.StatusOK, "")
	if sha([]byte(body)) != dg {
		t.Fatal("the blob pushed after the restart is not whole")
	}

	// A handover on SIGHUP: the new daemon serves the registry.
	old := d.pid(t)
	syscall.Kill(old, syscall.SIGHUP)
	d.followHandover(t, old)
	body = expect(t, regRequest(t, "GET", base+"/v2/kill/x/blobs/"+dg, nil, true), http.StatusOK, "")
	if sha([]byte(body)) != dg {
		t.Fatal("the blob served after a handover is not whole")
	}
}

// TestRegistryDeleteKeepsWhatIsUsed: deleting a manifest or a blob never
// takes what another image or a container uses; prune collects the rest.
func TestRegistryDeleteKeepsWhatIsUsed(t *testing.T) {
	d, addr := registry(t)
	auth := remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass})
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := name.ParseReference(addr+"/del/one:1", name.Insecure)
	r2, _ := name.ParseReference(addr+"/del/two:1", name.Insecure)
	for _, r := range []name.Reference{r1, r2} {
		if err := remote.Write(r, img, auth); err != nil {
			t.Fatal(err)
		}
	}
	dg, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	base := "http://" + addr
	expect(t, regRequest(t, "DELETE", base+"/v2/del/one/manifests/"+dg.String(), nil, true), http.StatusAccepted, "")
	expect(t, regRequest(t, "GET", base+"/v2/del/one/manifests/1", nil, true), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, regRequest(t, "DELETE", base+"/v2/del/one/blobs/"+ld.String(), nil, true), http.StatusConflict, "used by an image")
	must(t, d, "image", "prune")
	if _, err := remote.Image(r2, auth); err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(rc)
	got := expect(t, regRequest(t, "GET", base+"/v2/del/two/blobs/"+ld.String(), nil, true), http.StatusOK, "")
	if got != string(want) {
		t.Fatal("a layer another image uses changed after delete and prune")
	}

	// A container's image stays through a manifest delete and a prune.
	skopeo(t, "copy", "oci:"+filepath.Join(d.Root, "images")+":localhost/hello:latest", "docker://"+addr+"/del/hello:1", "--dest-tls-verify=false", "--dest-creds", regUser+":"+regPass)
	must(t, d, "image", "rm", "hello")
	must(t, d, "create", "--name", "uses-pushed", "del/hello:1", "-print", "still-here")
	hd := skopeoDigest(t, "--tls-verify=false", "--creds", regUser+":"+regPass, "docker://"+addr+"/del/hello:1")
	expect(t, regRequest(t, "DELETE", base+"/v2/del/hello/manifests/"+hd, nil, true), http.StatusAccepted, "")
	must(t, d, "image", "prune")
	if r := d.Run("", "start", "-a", "uses-pushed"); r.Code != 0 || !strings.Contains(r.Stdout, "still-here") {
		t.Fatalf("the container lost its image: %s", r)
	}
	must(t, d, "rm", "uses-pushed")
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryListenRules: plain HTTP is refused on a non-loopback
// address; the local CA serves TLS that a client trusting its
// certificate accepts.
func TestRegistryListenRules(t *testing.T) {
	r := env.daemon.Run("", "daemon", "--root", filepath.Join(env.tmp, "root-reg-open"), "--socket", filepath.Join(env.tmp, "reg-open.sock"),
		"--ingress-addr", "127.0.0.1:0", "--registry-addr", fmt.Sprintf("0.0.0.0:%d", freePort(t)))
	if r.Code == 0 || !strings.Contains(r.Stderr, "is not a loopback address") || !strings.Contains(r.Stderr, "--registry-tls-local") {
		t.Fatalf("a non-loopback address without TLS was not refused clearly: %s", r)
	}
	if _, err := os.Stat(filepath.Join(env.tmp, "root-reg-open")); !os.IsNotExist(err) {
		t.Fatalf("the refused daemon started anyway (its root exists: %v)", err)
	}
	addr := loopbackAddr(t)
	d, err := newRegistryDaemon(t, "registry-tls", addr, "--registry-tls-local")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	ca := filepath.Join(d.Root, "pki", "ca.crt")
	logb, _ := os.ReadFile(d.Log)
	if !strings.Contains(string(logb), ca) {
		t.Fatalf("the daemon's log does not name the CA certificate %s:\n%s", ca, logb)
	}
	out, err := exec.Command("skopeo", "inspect", "--raw", "--cert-dir", t.TempDir(), "--creds", regUser+":"+regPass, "docker://"+addr+"/none:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("a client not trusting the CA was not refused: %v %s", err, out)
	}
	certs := t.TempDir()
	b, _ := os.ReadFile(ca)
	os.WriteFile(filepath.Join(certs, "ca.crt"), b, 0o644)
	out, err = exec.Command("skopeo", "inspect", "--raw", "--cert-dir", certs, "--creds", regUser+":"+regPass, "docker://"+addr+"/none:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "manifest unknown") {
		t.Fatalf("a client trusting the CA did not reach the registry: %v %s", err, out)
	}
}

// TestRegistrySkiffToSkiff: another skiff daemon pulls an image from the
// registry's anonymous-read repositories and runs it, and is refused a
// private one.
func TestRegistrySkiffToSkiff(t *testing.T) {
	d, addr := registry(t)
	creds := regUser + ":" + regPass
	skopeo(t, "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:"+filepath.Join(d.Root, "images")+":localhost/hello:latest", "docker://"+addr+"/public/hello:1")
	ref := addr + "/public/hello:1"
	must(t, env.daemon, "image", "pull", ref)
	if r := env.daemon.Run("", "run", "--rm", ref, "-print", "from-skiff-registry"); r.Code != 0 || r.Stdout != "from-skiff-registry\n" {
		t.Fatalf("run the image pulled from skiff's registry: %s", r)
	}
	must(t, env.daemon, "image", "rm", ref)
	fails(t, env.daemon, []string{"access denied"}, "image", "pull", addr+"/hello:latest")
}
