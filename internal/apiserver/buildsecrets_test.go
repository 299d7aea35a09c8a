package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

// buildRecorder keeps what a build was given.
type buildRecorder struct {
	Images
	opts    BuildOptions
	context string
}

func (f *buildRecorder) Build(ctx context.Context, r io.Reader, opts BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return api.ImageBuildResponse{}, err
	}
	f.opts, f.context = opts, string(b)
	return api.ImageBuildResponse{ID: "sha256:1"}, nil
}

// TestBuildSecretsTransport: the client sends secrets in a multipart
// body ahead of the context, never in the URL; the server hands them and
// the context to the build apart; bad bodies are refused by name.
func TestBuildSecretsTransport(t *testing.T) {
	imgs := &buildRecorder{}
	var urls []string
	h := New(Services{Images: imgs}, slog.New(slog.DiscardHandler))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		urls = append(urls, r.URL.String())
		h.ServeHTTP(w, r)
	}))
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	secrets := map[string][]byte{"npmrc": []byte("token=s3cr3t\n"), "b.c-d": bytes.Repeat([]byte{0, 1, '\n'}, 1000)}
	ctxTar := strings.Repeat("context bytes ", 10000)
	_, err = client.New(sock).BuildImage(context.Background(), strings.NewReader(ctxTar), client.BuildOptions{Tags: []string{"x"}, Secrets: secrets, Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if imgs.context != ctxTar {
		t.Errorf("the build got a context of %d bytes, want %d", len(imgs.context), len(ctxTar))
	}
	if len(imgs.opts.Secrets) != 2 || !bytes.Equal(imgs.opts.Secrets["npmrc"], secrets["npmrc"]) || !bytes.Equal(imgs.opts.Secrets["b.c-d"], secrets["b.c-d"]) {
		t.Errorf("the build got secrets %q", imgs.opts.Secrets)
	}
	if imgs.opts.Network != "none" {
		t.Errorf("the build got network %q", imgs.opts.Network)
	}
	if len(urls) != 1 || strings.Contains(urls[0], "s3cr3t") || strings.Contains(urls[0], "npmrc") {
		t.Errorf("request URLs %q", urls)
	}

	for _, tc := range []struct {
		name  string
		parts [][2]string
		want  string
	}{
		{"no context", [][2]string{{"secret.a", "v"}}, `the build request has no "context" part`},
		{"unknown part", [][2]string{{"other", "v"}, {"context", ""}}, `unexpected part "other" in the build request`},
		{"bad id", [][2]string{{"secret.a/b", "v"}, {"context", ""}}, `secret id "a/b" is not valid`},
		{"too large", [][2]string{{"secret.big", strings.Repeat("x", api.MaxBuildSecretSize+1)}, {"context", ""}}, "secret big is larger than 512000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for _, p := range tc.parts {
				w, _ := mw.CreateFormField(p[0])
				w.Write([]byte(p[1]))
			}
			mw.Close()
			req := httptest.NewRequest("POST", "/v1/images/build?t=x", &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var e api.Error
			json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != 400 || !strings.Contains(e.Message, tc.want) || e.Kind != "invalid" {
				t.Errorf("status %d, body %s; want 400 saying %q", rec.Code, rec.Body, tc.want)
			}
		})
	}
}
