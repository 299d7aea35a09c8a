package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image"
)

const (
	testUser = "alice"
	testPass = "correct horse"
)

// newTestRegistry serves a fresh image store over httptest, with a user,
// deletes on and "public/*" readable by anyone.
func newTestRegistry(t *testing.T, opts ...image.Option) (*httptest.Server, *image.Store, string) {
	t.Helper()
	root := t.TempDir()
	st, err := image.Open(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(root, "registry", "htpasswd")
	if err := SetUser(users, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	g := New(Config{Store: st, Access: &Access{UsersFile: users, AnonymousRead: []string{"public/*"}}, AllowDelete: true, MaxManifestSize: 1 << 16, MaxBlobSize: 1 << 20})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv, st, root
}

func do(t *testing.T, srv *httptest.Server, method, path string, body []byte, hdr ...string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPass)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Authorization" && hdr[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func want(t *testing.T, resp *http.Response, body string, status int, contains string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(body, contains) {
		t.Fatalf("%s %s: got %d %q, want %d containing %q", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, status, contains)
	}
}

func TestNameMapping(t *testing.T) {
	tests := []struct{ repo, store string }{
		{"hello", "localhost/hello"},
		{"team/hello", "localhost/team/hello"},
		{"localhost/hello", "localhost/hello"},
		{"docker.io/library/alpine", "docker.io/library/alpine"},
		{"registry.example.com/x", "registry.example.com/x"},
	}
	for _, tc := range tests {
		if got := StoreName(tc.repo); got != tc.store {
			t.Errorf("StoreName(%q) = %q, want %q", tc.repo, got, tc.store)
		}
	}
	for store, wantName := range map[string]string{"localhost/hello": "hello", "docker.io/library/alpine": "docker.io/library/alpine", "localhost/team/x": "team/x"} {
		if got, ok := RepoName(store); !ok || got != wantName {
			t.Errorf("RepoName(%q) = %q %v, want %q", store, got, ok, wantName)
		}
	}
	if _, ok := RepoName("registry:5000/x"); ok {
		t.Error("a store name with a port is served")
	}
}

func TestParseRouteRefusesBadNames(t *testing.T) {
	for _, p := range []string{
		"/v2/../x/tags/list", "/v2/a/../b/manifests/latest", "/v2/a/./b/tags/list", "/v2/A/tags/list",
		"/v2/a//b/tags/list", "/v2/-a/tags/list", "/v2/" + strings.Repeat("a", 256) + "/tags/list", "/v2/a/blobs/",
	} {
		if rt, ok := parseRoute(p); ok {
			t.Errorf("parseRoute(%q) accepted %+v", p, rt)
		}
	}
	rt, ok := parseRoute("/v2/team/blobs/manifests/blobs/sha256:abc")
	if !ok || rt.name != "team/blobs/manifests" || rt.kind != "blob" {
		t.Errorf("a name with path words: %+v %v", rt, ok)
	}
}

// TestUploadFlows: chunked with Content-Range (an out-of-order chunk is
// 416 with the session's range), status, wrong digest, reuse, cancel.
func TestUploadFlows(t *testing.T) {
	srv, st, root := newTestRegistry(t)
	data := bytes.Repeat([]byte("abcdefgh"), 1000)
	dg := digest(data)

	resp, _ := do(t, srv, "POST", "/v2/team/app/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	resp, body := do(t, srv, "PATCH", loc, data[:3000], "Content-Range", "0-2999", "Content-Type", "application/octet-stream")
	want(t, resp, body, http.StatusAccepted, "")
	if r := resp.Header.Get("Range"); r != "0-2999" {
		t.Fatalf("Range after a chunk: %q", r)
	}
	resp, body = do(t, srv, "PATCH", loc, data[5000:], "Content-Range", "5000-7999")
	want(t, resp, body, http.StatusRequestedRangeNotSatisfiable, "")
	if r := resp.Header.Get("Range"); r != "0-2999" {
		t.Fatalf("Range after a refused chunk: %q", r)
	}
	resp, body = do(t, srv, "GET", loc, nil)
	want(t, resp, body, http.StatusNoContent, "")
	resp, body = do(t, srv, "PATCH", loc, data[3000:6000], "Content-Range", "3000-5999")
	want(t, resp, body, http.StatusAccepted, "")
	resp, body = do(t, srv, "PUT", loc+"?digest="+dg, data[6000:], "Content-Range", "6000-7999")
	want(t, resp, body, http.StatusCreated, "")
	resp, body = do(t, srv, "GET", "/v2/team/app/blobs/"+dg, nil, "Range", "bytes=10-17")
	want(t, resp, body, http.StatusPartialContent, "cdefghab")
	resp, body = do(t, srv, "PUT", loc+"?digest="+dg, nil)
	want(t, resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

	// A wrong digest ends the session and stores nothing.
	resp, _ = do(t, srv, "POST", "/v2/team/app/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	bad := digest([]byte("other"))
	resp, body = do(t, srv, "PUT", loc+"?digest="+bad, []byte("content"))
	want(t, resp, body, http.StatusBadRequest, "DIGEST_INVALID")
	resp, body = do(t, srv, "HEAD", "/v2/team/app/blobs/"+bad, nil)
	want(t, resp, body, http.StatusNotFound, "")

	// Cancel.
	resp, _ = do(t, srv, "POST", "/v2/team/app/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	do(t, srv, "PATCH", loc, []byte("partial"))
	resp, body = do(t, srv, "DELETE", loc, nil)
	want(t, resp, body, http.StatusNoContent, "")
	resp, body = do(t, srv, "GET", loc, nil)
	want(t, resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

	// A session belongs to its repository.
	resp, _ = do(t, srv, "POST", "/v2/team/app/blobs/uploads/", nil)
	loc = resp.Header.Get("Location")
	resp, body = do(t, srv, "GET", strings.Replace(loc, "team/app", "team/other", 1), nil)
	want(t, resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

	// Too large a blob.
	resp, body = do(t, srv, "POST", "/v2/team/app/blobs/uploads/?digest="+digest(make([]byte, 2<<20)), make([]byte, 2<<20))
	want(t, resp, body, http.StatusRequestEntityTooLarge, "SIZE_INVALID")

	if _, ok := st.BlobSize(mustHash(t, dg)); !ok {
		t.Fatal("the chunked blob is not in the store")
	}
	ents, _ := os.ReadDir(filepath.Join(root, "images", ".tmp", "uploads"))
	if len(ents) != 1 { // the one session still open
		t.Fatalf("upload files: %d, want 1", len(ents))
	}
}

func mustHash(t *testing.T, d string) v1.Hash {
	t.Helper()
	h, ok := image.ValidDigest(d)
	if !ok {
		t.Fatalf("bad digest %s", d)
	}
	return h
}

// pushImage pushes a config and one layer and a manifest naming them.
func pushImage(t *testing.T, srv *httptest.Server, repo, ref string, extra string) (string, []byte) {
	t.Helper()
	layer := []byte("layer of " + repo + extra)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest(layer) + `"]}}`)
	for _, b := range [][]byte{layer, cfg} {
		resp, body := do(t, srv, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest(b), b)
		want(t, resp, body, http.StatusCreated, "")
	}
	mf := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]%s}`,
		digest(cfg), len(cfg), digest(layer), len(layer), extra))
	resp, body := do(t, srv, "PUT", "/v2/"+repo+"/manifests/"+ref, mf, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	want(t, resp, body, http.StatusCreated, "")
	return digest(mf), mf
}

func TestManifestsTagsAndStore(t *testing.T) {
	srv, st, _ := newTestRegistry(t)
	dg, mf := pushImage(t, srv, "team/app", "v1", "")
	resp, body := do(t, srv, "GET", "/v2/team/app/manifests/v1", nil)
	want(t, resp, body, http.StatusOK, "")
	if body != string(mf) || resp.Header.Get("Docker-Content-Digest") != dg || resp.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("manifest not served as pushed: %q %v", body, resp.Header)
	}
	imgs, err := st.List(context.Background())
	if err != nil || len(imgs) != 1 || len(imgs[0].Tags) != 1 || imgs[0].Tags[0] != "localhost/team/app:v1" {
		t.Fatalf("the store lists %+v (%v)", imgs, err)
	}
	for _, tag := range []string{"v2", "a", "b", "c"} {
		resp, body = do(t, srv, "PUT", "/v2/team/app/manifests/"+tag, mf, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		want(t, resp, body, http.StatusCreated, "")
	}
	resp, body = do(t, srv, "GET", "/v2/team/app/tags/list?n=2", nil)
	want(t, resp, body, http.StatusOK, `"tags":["a","b"]`)
	if l := resp.Header.Get("Link"); !strings.Contains(l, "last=b") || !strings.Contains(l, `rel="next"`) {
		t.Fatalf("Link: %q", l)
	}
	resp, body = do(t, srv, "GET", "/v2/team/app/tags/list?n=2&last=b", nil)
	want(t, resp, body, http.StatusOK, `"tags":["c","v1"]`)
	resp, body = do(t, srv, "GET", "/v2/team/app/tags/list?last=v1", nil)
	want(t, resp, body, http.StatusOK, `"tags":["v2"]`)
	resp, body = do(t, srv, "GET", "/v2/team/none/tags/list", nil)
	want(t, resp, body, http.StatusNotFound, "NAME_UNKNOWN")

	// A deleted tag leaves the manifest by digest; deleting the
	// manifest removes every tag.
	resp, body = do(t, srv, "DELETE", "/v2/team/app/manifests/v1", nil)
	want(t, resp, body, http.StatusAccepted, "")
	resp, body = do(t, srv, "GET", "/v2/team/app/manifests/v1", nil)
	want(t, resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
	resp, body = do(t, srv, "DELETE", "/v2/team/app/manifests/"+dg, nil)
	want(t, resp, body, http.StatusAccepted, "")
	resp, body = do(t, srv, "GET", "/v2/team/app/manifests/v2", nil)
	want(t, resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")

	// Media type mismatch, invalid JSON, oversize, bad tag.
	resp, body = do(t, srv, "PUT", "/v2/team/app/manifests/x", mf, "Content-Type", "application/vnd.oci.image.index.v1+json")
	want(t, resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
	resp, body = do(t, srv, "PUT", "/v2/team/app/manifests/x", []byte("{not json"), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	want(t, resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
	resp, body = do(t, srv, "PUT", "/v2/team/app/manifests/x", make([]byte, 1<<17), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	want(t, resp, body, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	resp, body = do(t, srv, "PUT", "/v2/team/app/manifests/-bad", mf, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	want(t, resp, body, http.StatusBadRequest, "TAG_INVALID")
}

// TestReferrersAndArtifacts: an artifact with a subject is listed by
// the referrers API (filtered by artifactType) and does not disturb the
// store's image list or prune.
func TestReferrersAndArtifacts(t *testing.T) {
	// Leases end at once, so prune keeps only what manifests name.
	srv, st, _ := newTestRegistry(t, image.WithUploadMaxAge(time.Nanosecond))
	subject, mf := pushImage(t, srv, "team/app", "v1", "")
	empty := []byte("{}")
	resp, body := do(t, srv, "POST", "/v2/team/app/blobs/uploads/?digest="+digest(empty), empty)
	want(t, resp, body, http.StatusCreated, "")
	sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d},"annotations":{"who":"ci"}}`,
		digest(empty), subject, len(mf)))
	resp, body = do(t, srv, "PUT", "/v2/team/app/manifests/"+digest(sig), sig, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	want(t, resp, body, http.StatusCreated, "")
	if resp.Header.Get("OCI-Subject") != subject {
		t.Fatalf("OCI-Subject: %q", resp.Header.Get("OCI-Subject"))
	}
	resp, body = do(t, srv, "GET", "/v2/team/app/referrers/"+subject, nil)
	want(t, resp, body, http.StatusOK, digest(sig))
	var idx struct {
		Manifests []struct {
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	json.Unmarshal([]byte(body), &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" || idx.Manifests[0].Annotations["who"] != "ci" {
		t.Fatalf("referrers: %s", body)
	}
	resp, body = do(t, srv, "GET", "/v2/team/app/referrers/"+subject+"?artifactType=application/vnd.other", nil)
	want(t, resp, body, http.StatusOK, `"manifests":[]`)
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatal("OCI-Filters-Applied missing")
	}
	imgs, err := st.List(context.Background())
	if err != nil || len(imgs) != 1 {
		t.Fatalf("the artifact disturbs the image list: %+v %v", imgs, err)
	}
	if _, err := st.Prune(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, srv, "GET", "/v2/team/app/manifests/"+digest(sig), nil)
	want(t, resp, body, http.StatusOK, "vnd.example.sig")
	resp, body = do(t, srv, "GET", "/v2/team/app/blobs/"+digest(empty), nil)
	want(t, resp, body, http.StatusOK, "{}")
}

// TestPruneKeepsLeasedBlobs: a blob pushed for a manifest to come
// survives prune for the upload max age, and goes after it.
func TestPruneKeepsLeasedBlobs(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  time.Duration
		kept bool
	}{{"within the lease", time.Hour, true}, {"after the lease", time.Nanosecond, false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, st, _ := newTestRegistry(t, image.WithUploadMaxAge(tc.age))
			data := []byte("a layer pushed before its manifest")
			resp, body := do(t, srv, "POST", "/v2/team/app/blobs/uploads/?digest="+digest(data), data)
			want(t, resp, body, http.StatusCreated, "")
			time.Sleep(time.Millisecond)
			if _, err := st.Prune(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if _, ok := st.BlobSize(mustHash(t, digest(data))); ok != tc.kept {
				t.Fatalf("blob present after prune: %v, want %v", ok, tc.kept)
			}
		})
	}
}

// TestPruneCollectsMovedArtifact: an artifact a tag moved off is left
// untagged, and prune removes it and its blobs.
func TestPruneCollectsMovedArtifact(t *testing.T) {
	srv, st, _ := newTestRegistry(t, image.WithUploadMaxAge(time.Nanosecond))
	push := func(content string) (string, string) {
		blob := []byte(content)
		resp, body := do(t, srv, "POST", "/v2/team/art/blobs/uploads/?digest="+digest(blob), blob)
		want(t, resp, body, http.StatusCreated, "")
		mf := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":%d},"layers":[]}`, digest(blob), len(blob)))
		resp, body = do(t, srv, "PUT", "/v2/team/art/manifests/latest", mf, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		want(t, resp, body, http.StatusCreated, "")
		return digest(mf), digest(blob)
	}
	oldMf, oldBlob := push("first")
	newMf, newBlob := push("second")
	time.Sleep(time.Millisecond)
	if _, err := st.Prune(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for d, kept := range map[string]bool{oldMf: false, oldBlob: false, newMf: true, newBlob: true} {
		if _, ok := st.BlobSize(mustHash(t, d)); ok != kept {
			t.Errorf("blob %s present after prune: %v, want %v", d, ok, kept)
		}
	}
}

// TestStrictMediaTypes: strict mode refuses an unknown manifest media
// type and accepts an artifact; without it any media type is stored.
func TestStrictMediaTypes(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			st, err := image.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			users := filepath.Join(t.TempDir(), "htpasswd")
			SetUser(users, testUser, testPass)
			srv := httptest.NewServer(New(Config{Store: st, Access: &Access{UsersFile: users}, Strict: strict}))
			defer srv.Close()
			odd := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.odd+json"}`)
			resp, body := do(t, srv, "PUT", "/v2/team/odd/manifests/v1", odd, "Content-Type", "application/vnd.example.odd+json")
			if strict {
				want(t, resp, body, http.StatusBadRequest, "--registry-strict")
			} else {
				want(t, resp, body, http.StatusCreated, "")
				resp, body = do(t, srv, "GET", "/v2/team/odd/manifests/v1", nil)
				want(t, resp, body, http.StatusOK, string(odd))
				if resp.Header.Get("Content-Type") != "application/vnd.example.odd+json" {
					t.Fatalf("served as %q", resp.Header.Get("Content-Type"))
				}
				if _, err := st.List(context.Background()); err != nil {
					t.Fatalf("the store cannot list images beside an odd manifest: %v", err)
				}
				if _, err := st.Prune(context.Background(), nil); err != nil {
					t.Fatalf("prune beside an odd manifest: %v", err)
				}
			}
			art := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + digest([]byte("{}")) + `","size":2},"layers":[]}`)
			resp, body = do(t, srv, "POST", "/v2/team/odd/blobs/uploads/?digest="+digest([]byte("{}")), []byte("{}"))
			want(t, resp, body, http.StatusCreated, "")
			resp, body = do(t, srv, "PUT", "/v2/team/odd/manifests/art", art, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
			want(t, resp, body, http.StatusCreated, "")
		})
	}
}

// TestPutManifestChecksBlobsUnderTheLock: the store refuses to index a
// manifest whose blobs went missing after the registry's first check
// (a prune or blob delete in between).
func TestPutManifestChecksBlobsUnderTheLock(t *testing.T) {
	_, st, _ := newTestRegistry(t)
	raw := []byte(`{"schemaVersion":2}`)
	h := mustHash(t, digest(raw))
	missing := mustHash(t, digest([]byte("gone")))
	err := st.PutManifest(context.Background(), "localhost/team/app", "v1", v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(raw)), Digest: h}, raw, []v1.Hash{missing})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), missing.String()) {
		t.Fatalf("got %v, want not found naming %s", err, missing)
	}
	if _, err := st.ResolveManifest("localhost/team/app", "v1"); err == nil {
		t.Fatal("the manifest was indexed without its blobs")
	}
}

func TestAccess(t *testing.T) {
	srv, _, _ := newTestRegistry(t)
	pushImage(t, srv, "public/app", "v1", "")
	pushImage(t, srv, "team/app", "v1", "")
	anon := []string{"Authorization", ""}
	resp, body := do(t, srv, "GET", "/v2/public/app/manifests/v1", nil, anon...)
	want(t, resp, body, http.StatusOK, "schemaVersion")
	resp, body = do(t, srv, "GET", "/v2/team/app/manifests/v1", nil, anon...)
	want(t, resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}
	// Anonymous readers get the blobs of the repository's manifests,
	// not a blob of another repository by its digest.
	cfgOf := func(repo string) string {
		_, body := do(t, srv, "GET", "/v2/"+repo+"/manifests/v1", nil)
		var m struct{ Config struct{ Digest string } }
		json.Unmarshal([]byte(body), &m)
		return m.Config.Digest
	}
	resp, body = do(t, srv, "GET", "/v2/public/app/blobs/"+cfgOf("public/app"), nil, anon...)
	want(t, resp, body, http.StatusOK, "rootfs")
	resp, body = do(t, srv, "GET", "/v2/public/app/blobs/"+cfgOf("team/app"), nil, anon...)
	want(t, resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
	resp, body = do(t, srv, "GET", "/v2/team/app/blobs/"+cfgOf("team/app"), nil, anon...)
	want(t, resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
	resp, body = do(t, srv, "POST", "/v2/public/app/blobs/uploads/", nil, anon...)
	want(t, resp, body, http.StatusUnauthorized, "UNAUTHORIZED")
	resp, body = do(t, srv, "GET", "/v2/", nil, "Authorization", "Basic "+basic(testUser, "wrong"))
	want(t, resp, body, http.StatusUnauthorized, "wrong user name or password")
	resp, body = do(t, srv, "GET", "/v2/_catalog", nil)
	want(t, resp, body, http.StatusOK, `"repositories":["public/app","team/app"]`)
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestConcurrentIdenticalPushes: many clients pushing one blob at once
// all succeed and leave one whole blob and no upload files.
func TestConcurrentIdenticalPushes(t *testing.T) {
	srv, st, root := newTestRegistry(t)
	data := bytes.Repeat([]byte("same"), 50000)
	dg := digest(data)
	var wg sync.WaitGroup
	codes := make(chan int, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := do(t, srv, "POST", "/v2/team/app/blobs/uploads/?digest="+dg, data)
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusCreated {
			t.Fatalf("a concurrent push got %d", c)
		}
	}
	f, err := st.OpenBlob(mustHash(t, dg))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if digest(b) != dg {
		t.Fatal("the stored blob is not the content pushed")
	}
	ents, _ := os.ReadDir(filepath.Join(root, "images", ".tmp", "uploads"))
	if len(ents) != 0 {
		t.Fatalf("%d upload files left", len(ents))
	}
}

func TestSetUserAndCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := SetUser(file, "bob", "pw1"); err != nil {
		t.Fatal(err)
	}
	a := &Access{UsersFile: file}
	if !a.check("bob", "pw1") || a.check("bob", "pw2") || a.check("eve", "pw1") {
		t.Fatal("check does not follow the file")
	}
	if err := SetUser(file, "bob", "pw2"); err != nil {
		t.Fatal(err)
	}
	if a.check("bob", "pw1") || !a.check("bob", "pw2") {
		t.Fatal("a changed password is not picked up")
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), "pw2") || !strings.HasPrefix(string(b), "bob:$2") {
		t.Fatalf("the file does not hold a bcrypt hash: %q", b)
	}
	for _, bad := range []string{"", "a b", "x:y"} {
		if err := SetUser(file, bad, "pw"); err == nil {
			t.Errorf("user name %q accepted", bad)
		}
	}
	if err := RemoveUser(file, "bob"); err != nil || a.check("bob", "pw2") {
		t.Fatalf("remove: %v", err)
	}
	if err := CheckPatterns([]string{"public/["}); err == nil {
		t.Error("a bad pattern is accepted")
	}
}

func TestListenRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, _, err := Listen(context.Background(), ListenConfig{Addr: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("got %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:5000": true, "[::1]:5000": true, "localhost:5000": true, ":5000": false, "10.0.0.1:5000": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}
