package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// readingImages reads whole upload bodies, as the image store does.
type readingImages struct {
	Images
	got int
}

func (f *readingImages) Import(ctx context.Context, r io.Reader) ([]api.Image, error) {
	b, err := io.ReadAll(r)
	f.got = len(b)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return []api.Image{}, nil
}

func (f *readingImages) Build(ctx context.Context, r io.Reader, opts BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
	b, err := io.ReadAll(r)
	f.got = len(b)
	if err != nil {
		return api.ImageBuildResponse{}, fmt.Errorf("build context: %w", err)
	}
	return api.ImageBuildResponse{ID: "sha256:1"}, nil
}

// TestUploadLimit: image archives and build contexts larger than the
// limit are refused while they are read (or at once, when the request
// says its length), with a message that names the limit and the flag.
func TestUploadLimit(t *testing.T) {
	const limit = 1 << 10
	const msg = "exceeds the upload limit of 1 KiB: raise it with skiff daemon --max-image-size"
	for _, tc := range []struct {
		name, path string
		size       int
		chunked    bool
		want       string // "" for success
	}{
		{"import under", "/v1/images/import", limit, false, ""},
		{"import over, announced", "/v1/images/import", limit + 1, false, "the image archive " + msg},
		{"import over, chunked", "/v1/images/import", 64 * limit, true, "the image archive " + msg},
		{"build under", "/v1/images/build?t=x", limit, true, ""},
		{"build over, announced", "/v1/images/build?t=x", limit + 1, false, "the build context " + msg},
		{"build over, chunked", "/v1/images/build?t=x", 64 * limit, true, "the build context " + msg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgs := &readingImages{}
			srv := httptest.NewServer(New(Services{Images: imgs}, slog.New(slog.DiscardHandler), WithMaxUpload(limit)))
			defer srv.Close()
			var body io.Reader = strings.NewReader(strings.Repeat("x", tc.size))
			if tc.chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			resp, err := http.Post(srv.URL+tc.path, "application/x-tar", body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			if tc.want == "" {
				if resp.StatusCode != 200 || strings.Contains(string(out), "error") || imgs.got != tc.size {
					t.Fatalf("status %d, read %d of %d bytes: %s", resp.StatusCode, imgs.got, tc.size, out)
				}
				return
			}
			var e api.Error
			if strings.HasPrefix(tc.path, "/v1/images/build") && resp.StatusCode == 200 {
				var line struct{ Error api.Error }
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					json.Unmarshal([]byte(l), &line)
				}
				e = line.Error
			} else {
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", resp.StatusCode, out)
				}
				json.Unmarshal(out, &e)
			}
			if !strings.Contains(e.Message, tc.want) || e.Kind != "invalid" {
				t.Fatalf("error %+v, want an invalid error saying %q (body %s)", e, tc.want, out)
			}
			if imgs.got > limit {
				t.Errorf("the service read %d bytes, more than the limit", imgs.got)
			}
		})
	}
}
