package dockerapi

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
)

// fakeImages is an image service over a fixed list of images.
type fakeImages struct {
	apiserver.Images
	imgs    []api.Image
	v1      map[string]v1.Image // by ID
	inUse   map[string]bool     // IDs Remove refuses without force
	removed []string
	tagged  [][2]string
	pulled  []api.ImagePullRequest
	pullErr error
	build   func(r io.Reader, opts apiserver.BuildOptions, progress io.Writer) (api.ImageBuildResponse, error)
	gcFreed int64
	// authUser is the user of the last pull or push with credentials.
	authUser string
}

func (f *fakeImages) List(ctx context.Context) ([]api.Image, error) { return f.imgs, nil }

func (f *fakeImages) Inspect(ctx context.Context, ref string) (api.Image, error) {
	for _, img := range f.imgs {
		if img.ID == ref || strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), ref) {
			return img, nil
		}
		for _, t := range img.Tags {
			if t == ref || familiar(t) == ref || strings.TrimPrefix(t, "localhost/") == ref || familiar(t) == ref+":latest" {
				return img, nil
			}
		}
	}
	return api.Image{}, errdefs.NotFound("image %s not found", ref)
}

func (f *fakeImages) Image(ctx context.Context, ref string) (v1.Image, error) {
	img, ok := f.v1[ref]
	if !ok {
		return nil, errdefs.NotFound("image %s not found", ref)
	}
	return img, nil
}

func (f *fakeImages) Tag(ctx context.Context, src, dst string) error {
	f.tagged = append(f.tagged, [2]string{src, dst})
	return nil
}

func (f *fakeImages) Remove(ctx context.Context, ref string, force bool) (api.ImageRemoveResponse, error) {
	img, err := f.Inspect(ctx, ref)
	if err != nil {
		return api.ImageRemoveResponse{}, err
	}
	if f.inUse[img.ID] && !force {
		return api.ImageRemoveResponse{}, errdefs.Conflict("image %s is used by a container", ref)
	}
	f.removed = append(f.removed, img.ID)
	return api.ImageRemoveResponse{Untagged: img.Tags, Deleted: []string{img.ID}}, nil
}

func (f *fakeImages) Prune(ctx context.Context) (api.ImagePruneResponse, error) {
	return api.ImagePruneResponse{BytesFreed: f.gcFreed}, nil
}

func (f *fakeImages) Pull(ctx context.Context, req api.ImagePullRequest) (api.Image, error) {
	f.pulled = append(f.pulled, req)
	if f.pullErr != nil {
		return api.Image{}, f.pullErr
	}
	return api.Image{ID: "sha256:abc", Digest: "sha256:d1"}, nil
}

func (f *fakeImages) PullAuth(ctx context.Context, req api.ImagePullRequest, auth registry.AuthConfig) (api.Image, error) {
	f.authUser = auth.Username
	return f.Pull(ctx, req)
}

func (f *fakeImages) PushAuth(ctx context.Context, req api.ImagePullRequest, auth registry.AuthConfig) error {
	f.authUser = auth.Username
	return nil
}

func (f *fakeImages) Build(ctx context.Context, r io.Reader, opts apiserver.BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
	return f.build(r, opts, progress)
}

const (
	idApp  = "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
	idBusy = "sha256:bbbb000000000000000000000000000000000000000000000000000000000002"
	idNone = "sha256:cccc000000000000000000000000000000000000000000000000000000000003"
)

func testImages() *fakeImages {
	now := time.Unix(1_700_000_000, 0)
	return &fakeImages{imgs: []api.Image{
		{ID: idApp, Digest: "sha256:da", Tags: []string{"localhost/app:1", "localhost/app:2"}, Created: now, Size: 100,
			Config: api.ImageConfig{Labels: map[string]string{"team": "web"}, Env: []string{"A=1"}, ExposedPorts: []string{"8080"}}},
		{ID: idBusy, Tags: []string{"docker.io/library/busybox:latest"}, Created: now.Add(-time.Hour), Size: 50},
		{ID: idNone, Created: now.Add(-2 * time.Hour), Size: 10},
	}, inUse: map[string]bool{}}
}

// serveReq runs one request through a Docker API server over svc.
func serveReq(t *testing.T, svc Services, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	srv := New(svc, nil)
	req := httptest.NewRequest(method, target, body)
	if body != nil && method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

// streamLines decodes a JSON progress stream.
func streamLines(t *testing.T, body []byte) []streamMessage {
	t.Helper()
	var out []streamMessage
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var m streamMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func filtersQuery(f map[string][]string) string {
	m := map[string]map[string]bool{}
	for k, vs := range f {
		m[k] = map[string]bool{}
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m)
	return url.QueryEscape(string(b))
}

func TestImageListFilters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		filters map[string][]string
		want    []string // IDs
	}{
		{"all", nil, []string{idApp, idBusy, idNone}},
		{"reference by familiar name", map[string][]string{"reference": {"busybox"}}, []string{idBusy}},
		{"reference glob with tag", map[string][]string{"reference": {"app:2"}}, []string{idApp}},
		{"reference glob", map[string][]string{"reference": {"localhost/*"}}, []string{idApp}},
		{"dangling", map[string][]string{"dangling": {"true"}}, []string{idNone}},
		{"not dangling", map[string][]string{"dangling": {"false"}}, []string{idApp, idBusy}},
		{"label key", map[string][]string{"label": {"team"}}, []string{idApp}},
		{"label value mismatch", map[string][]string{"label": {"team=db"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "/v1.51/images/json"
			if tc.filters != nil {
				target += "?filters=" + filtersQuery(tc.filters)
			}
			rec := serveReq(t, Services{Images: testImages()}, "GET", target, nil)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got []string
			for _, s := range decodeBody[[]image.Summary](t, rec) {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	rec := serveReq(t, Services{Images: testImages()}, "GET", "/images/json?filters="+filtersQuery(map[string][]string{"colour": {"x"}}), nil)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "colour") {
		t.Fatalf("unknown filter: %d %s", rec.Code, rec.Body)
	}
}

func TestImageInspectAndTags(t *testing.T) {
	imgs := testImages()
	svc := Services{Images: imgs}
	rec := serveReq(t, svc, "GET", "/v1.51/images/localhost/app:1/json", nil)
	if rec.Code != 200 {
		t.Fatalf("inspect: %d %s", rec.Code, rec.Body)
	}
	in := decodeBody[image.InspectResponse](t, rec)
	if in.ID != idApp || !slices.Equal(in.RepoTags, []string{"localhost/app:1", "localhost/app:2"}) ||
		in.Config == nil || in.Config.Labels["team"] != "web" || !slices.Equal(in.Config.Env, []string{"A=1"}) {
		t.Fatalf("inspect: %+v", in)
	}
	if _, ok := in.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Fatalf("exposed ports: %v", in.Config.ExposedPorts)
	}
	if !slices.Equal(in.RepoDigests, []string{"localhost/app@sha256:da"}) {
		t.Fatalf("repo digests: %v", in.RepoDigests)
	}
	rec = serveReq(t, svc, "GET", "/images/busybox/json", nil)
	if in := decodeBody[image.InspectResponse](t, rec); rec.Code != 200 || !slices.Equal(in.RepoTags, []string{"busybox:latest"}) {
		t.Fatalf("familiar name: %d %s", rec.Code, rec.Body)
	}
	rec = serveReq(t, svc, "GET", "/images/nothere/json", nil)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"message":"No such image: nothere"`) {
		t.Fatalf("missing image: %d %s", rec.Code, rec.Body)
	}

	rec = serveReq(t, svc, "POST", "/v1.51/images/localhost/app:1/tag?repo=example/app&tag=3", nil)
	if rec.Code != 201 || !slices.Equal(imgs.tagged, [][2]string{{"localhost/app:1", "example/app:3"}}) {
		t.Fatalf("tag: %d %s %v", rec.Code, rec.Body, imgs.tagged)
	}
	rec = serveReq(t, svc, "POST", "/images/app:1/tag", nil)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "repo") {
		t.Fatalf("tag without repo: %d %s", rec.Code, rec.Body)
	}

	rec = serveReq(t, svc, "DELETE", "/v1.51/images/busybox:latest", nil)
	del := decodeBody[[]image.DeleteResponse](t, rec)
	if rec.Code != 200 || len(del) != 2 || del[0].Untagged != "busybox:latest" || del[1].Deleted != idBusy {
		t.Fatalf("remove: %d %s", rec.Code, rec.Body)
	}
}

// TestImagePrune: prune removes dangling images only, or with
// dangling=false every image no container uses, and adds what the blob
// sweep freed.
func TestImagePrune(t *testing.T) {
	imgs := testImages()
	imgs.gcFreed = 4096
	rec := serveReq(t, Services{Images: imgs}, "POST", "/images/prune", nil)
	rep := decodeBody[image.PruneReport](t, rec)
	if rec.Code != 200 || !slices.Equal(imgs.removed, []string{idNone}) || rep.SpaceReclaimed != 4096 {
		t.Fatalf("dangling prune: %d %s removed %v", rec.Code, rec.Body, imgs.removed)
	}
	imgs = testImages()
	imgs.inUse[idApp] = true
	rec = serveReq(t, Services{Images: imgs}, "POST", "/images/prune?filters="+filtersQuery(map[string][]string{"dangling": {"false"}}), nil)
	if rec.Code != 200 || !slices.Equal(imgs.removed, []string{idBusy, idNone}) {
		t.Fatalf("prune all unused: %d %s removed %v", rec.Code, rec.Body, imgs.removed)
	}
}

func TestImageHistory(t *testing.T) {
	img, err := random.Image(100, 2)
	if err != nil {
		t.Fatal(err)
	}
	imgs := testImages()
	imgs.v1 = map[string]v1.Image{idApp: img}
	rec := serveReq(t, Services{Images: imgs, ImageSource: imgs}, "GET", "/images/app:1/history", nil)
	if rec.Code != 200 {
		t.Fatalf("history: %d %s", rec.Code, rec.Body)
	}
	h := decodeBody[[]image.HistoryResponseItem](t, rec)
	if len(h) != 2 || h[0].ID != idApp || h[1].ID != "<missing>" || h[0].Size == 0 {
		t.Fatalf("history: %+v", h)
	}
}

// TestImagePullStream: a pull answers docker's JSON progress stream; a
// failed pull ends it with errorDetail (and error, for old clients),
// which docker prints.
func TestImagePullStream(t *testing.T) {
	imgs := testImages()
	auth := base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p"}`))
	srv := New(Services{Images: imgs}, nil)
	req := httptest.NewRequest("POST", "/v1.51/images/create?fromImage=127.0.0.1:5000/team/app&tag=1", nil)
	req.Header.Set("X-Registry-Auth", auth)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	msgs := streamLines(t, rec.Body.Bytes())
	if rec.Code != 200 || len(imgs.pulled) != 1 || imgs.pulled[0].Ref != "127.0.0.1:5000/team/app:1" || imgs.authUser != "u" {
		t.Fatalf("pull: %d %s %+v", rec.Code, rec.Body, imgs.pulled)
	}
	if len(msgs) != 3 || msgs[0].Status != "Pulling from 127.0.0.1:5000/team/app" || msgs[1].Status != "Digest: sha256:d1" ||
		!strings.HasPrefix(msgs[2].Status, "Status: Downloaded newer image for 127.0.0.1:5000/team/app:1") {
		t.Fatalf("pull stream: %s", rec.Body)
	}

	imgs.pullErr = errdefs.NotFound("manifest unknown")
	rec = serveReq(t, Services{Images: imgs}, "POST", "/images/create?fromImage=busybox&tag=latest", nil)
	msgs = streamLines(t, rec.Body.Bytes())
	last := msgs[len(msgs)-1]
	if last.Message.Error == nil || last.Message.Error.Message != "manifest unknown" || last.Message.Error.Code != 404 || last.Error != "manifest unknown" {
		t.Fatalf("failed pull: %s", rec.Body)
	}

	req = httptest.NewRequest("POST", "/images/create?fromImage=busybox", nil)
	req.Header.Set("X-Registry-Auth", "%%%not-base64")
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "X-Registry-Auth") {
		t.Fatalf("bad auth header: %d %s", rec.Code, rec.Body)
	}
}

// TestImageSave: GET /images/get writes a docker-archive whose
// manifest.json names the tags asked for, readable by a tarball loader.
func TestImageSave(t *testing.T) {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	imgs := testImages()
	imgs.v1 = map[string]v1.Image{idApp: img}
	rec := serveReq(t, Services{Images: imgs, ImageSource: imgs}, "GET", "/v1.51/images/get?names=app:1", nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("save: %d %s", rec.Code, rec.Body)
	}
	var manifest []tarball.Descriptor
	tr := tar.NewReader(bytes.NewReader(rec.Body.Bytes()))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{"localhost/app:1"}) || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json: %+v", manifest)
	}
	rec = serveReq(t, Services{Images: imgs}, "GET", "/images/get?names=app:1", nil)
	if rec.Code != 501 {
		t.Fatalf("save without an image source: %d %s", rec.Code, rec.Body)
	}
	rec = serveReq(t, Services{Images: imgs, ImageSource: imgs}, "GET", "/images/get", nil)
	if rec.Code != 400 {
		t.Fatalf("save of nothing: %d %s", rec.Code, rec.Body)
	}
}

// TestBuildStream: /build passes the classic builder's parameters and
// answers its JSON stream: Step lines, the aux ID, Successfully built
// and tagged; a failed build ends with errorDetail.
func TestBuildStream(t *testing.T) {
	imgs := testImages()
	var got apiserver.BuildOptions
	var ctxBytes []byte
	imgs.build = func(r io.Reader, opts apiserver.BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
		got = opts
		ctxBytes, _ = io.ReadAll(r)
		opts.Events(api.BuildEvent{Kind: api.BuildStepStarted, Index: 1, Total: 2, Text: "FROM busybox"})
		opts.Events(api.BuildEvent{Kind: api.BuildStepStarted, Index: 2, Total: 2, Text: "RUN echo hi"})
		opts.Events(api.BuildEvent{Kind: api.BuildStepOutput, Text: "hi"})
		opts.Events(api.BuildEvent{Kind: api.BuildStepDone})
		return api.ImageBuildResponse{ID: idApp, Tags: opts.Tags}, nil
	}
	q := url.Values{"t": {"app:1", "app:latest"}, "dockerfile": {"build/Dockerfile"}, "target": {"final"},
		"buildargs": {`{"A":"1","B":null}`}, "labels": {`{"l":"v"}`}, "nocache": {"1"}, "networkmode": {"none"}}
	rec := serveReq(t, Services{Images: imgs}, "POST", "/v1.51/build?"+q.Encode(), strings.NewReader("context-tar"))
	if rec.Code != 200 || string(ctxBytes) != "context-tar" {
		t.Fatalf("build: %d %s", rec.Code, rec.Body)
	}
	if !slices.Equal(got.Tags, []string{"app:1", "app:latest"}) || got.Dockerfile != "build/Dockerfile" || got.Target != "final" ||
		got.BuildArgs["A"] != "1" || len(got.BuildArgs) != 1 || got.Labels["l"] != "v" || !got.NoCache || got.Network != "none" {
		t.Fatalf("build options: %+v", got)
	}
	var text strings.Builder
	var auxID string
	for _, m := range streamLines(t, rec.Body.Bytes()) {
		text.WriteString(m.Stream)
		if m.Aux != nil {
			var res struct{ ID string }
			json.Unmarshal(*m.Aux, &res)
			auxID = res.ID
		}
	}
	want := "Step 1/2 : FROM busybox\nStep 2/2 : RUN echo hi\nhi\nSuccessfully built aaaa00000000\nSuccessfully tagged app:1\nSuccessfully tagged app:latest\n"
	if text.String() != want || auxID != idApp {
		t.Fatalf("build stream text:\n%s\naux %q", text.String(), auxID)
	}

	imgs.build = func(r io.Reader, opts apiserver.BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
		return api.ImageBuildResponse{}, errdefs.Invalid("Dockerfile line 3: unknown instruction FROB")
	}
	rec = serveReq(t, Services{Images: imgs}, "POST", "/build?t=x", strings.NewReader("tar"))
	msgs := streamLines(t, rec.Body.Bytes())
	if last := msgs[len(msgs)-1]; last.Message.Error == nil || !strings.Contains(last.Message.Error.Message, "FROB") {
		t.Fatalf("failed build: %s", rec.Body)
	}

	for _, tc := range []struct{ query, want string }{
		{"t=x&version=2", "DOCKER_BUILDKIT=0"},
		{"t=x&buildargs=notjson", "buildargs"},
		{"t=x&networkmode=host", "network mode"},
		{"t=x&remote=https://example.com/x.git", "remote"},
	} {
		rec := serveReq(t, Services{Images: imgs}, "POST", "/build?"+tc.query, strings.NewReader("tar"))
		if rec.Code < 400 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("build %s: %d %s", tc.query, rec.Code, rec.Body)
		}
	}
}

func TestClassicLine(t *testing.T) {
	for _, tc := range []struct {
		ev   api.BuildEvent
		want string
	}{
		{api.BuildEvent{Kind: api.BuildStepStarted, Index: 1, Total: 3, Text: "FROM x", Multi: true, Stage: "build"}, "[build] Step 1/3 : FROM x\n"},
		{api.BuildEvent{Kind: api.BuildStepDone, Cached: true}, " ---> Using cache\n"},
		{api.BuildEvent{Kind: api.BuildStepDone}, ""},
		{api.BuildEvent{Kind: api.BuildWarning, Text: "w"}, "[WARNING]: w\n"},
	} {
		if got, _ := classicLine(tc.ev); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.ev, got, tc.want)
		}
	}
}
