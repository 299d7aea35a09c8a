package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// fakeContainers answers Get and Create with what the test says; any other
// method panics (the embedded interface is nil).
type fakeContainers struct {
	Containers
	err     error
	created *api.ContainerCreateRequest
}

func (f *fakeContainers) Get(ctx context.Context, ref string) (api.Container, error) {
	if f.err != nil {
		return api.Container{}, f.err
	}
	return api.Container{ID: ref, Name: "web"}, nil
}

func (f *fakeContainers) Create(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error) {
	f.created = &req
	return api.Container{ID: "abc", Name: req.Name}, nil
}

func newTestServer(c *fakeContainers) *Server {
	return New(Services{Containers: c}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func do(t *testing.T, s *Server, method, path, contentType, body string) (int, api.Error, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var e api.Error
	json.Unmarshal(rec.Body.Bytes(), &e)
	return rec.Code, e, rec.Body.String()
}

func TestErrorCategoriesBecomeStatusCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		kind string
	}{
		{"invalid", errdefs.Invalid("bad name %q", "x y"), 400, "invalid"},
		{"not found", errdefs.NotFound("no container x"), 404, "not_found"},
		{"conflict", errdefs.Conflict("name in use"), 409, "conflict"},
		{"unauthorized", fmt.Errorf("wrapped: %w", errdefs.ErrUnauthorized), 401, "unauthorized"},
		{"not implemented", fmt.Errorf("later: %w", errdefs.ErrNotImplemented), 501, "not_implemented"},
		{"unavailable", errdefs.Unavailable("runtime is down"), 503, "unavailable"},
		{"wrapped twice", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", errdefs.NotFound("gone"))), 404, "not_found"},
		{"canceled", context.Canceled, 408, "unavailable"},
		{"uncategorised", errors.New("disk on fire"), 500, "internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, e, body := do(t, newTestServer(&fakeContainers{err: tc.err}), "GET", "/v1/containers/x", "", "")
			if code != tc.code || e.Kind != tc.kind || e.Message != tc.err.Error() {
				t.Fatalf("got %d %+v (%s), want %d kind %s message %q", code, e, body, tc.code, tc.kind, tc.err.Error())
			}
		})
	}
}

func TestBadRequestBodies(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    string
	}{
		{"empty", "application/json", "", "request body is empty"},
		{"not JSON", "application/json", "{name: web}", "not valid JSON at byte"},
		{"wrong type", "application/json", `{"name": 5}`, `field "name" must be string`},
		{"unknown field", "application/json", `{"name": "web", "nmae": "x"}`, `unknown field "nmae"`},
		{"data after the object", "application/json", `{"name": "web"} {}`, "data after the JSON object"},
		{"not JSON content type", "text/plain", `{"name": "web"}`, "must be application/json, not text/plain"},
		{"too large", "application/json", `{"name": "` + strings.Repeat("a", MaxJSONBody) + `"}`, fmt.Sprintf("larger than %d bytes", MaxJSONBody)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeContainers{}
			code, e, body := do(t, newTestServer(c), "POST", "/v1/containers", tc.contentType, tc.body)
			if code != 400 || e.Kind != "invalid" || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("got %d %s, want 400 naming %q", code, body, tc.want)
			}
			if c.created != nil {
				t.Fatalf("a bad body still reached the service: %+v", c.created)
			}
		})
	}
	// The same body, well formed, is accepted.
	c := &fakeContainers{}
	if code, _, body := do(t, newTestServer(c), "POST", "/v1/containers", "application/json", `{"name": "web"}`); code != 201 || c.created == nil || c.created.Name != "web" {
		t.Fatalf("good body: %d %s", code, body)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	code, e, _ := do(t, newTestServer(&fakeContainers{}), "GET", "/v1/nothing", "", "")
	if code != 404 || e.Kind != "not_found" || !strings.Contains(e.Message, "no API endpoint GET /v1/nothing") {
		t.Fatalf("got %d %+v", code, e)
	}
	code, _, _ = do(t, newTestServer(&fakeContainers{}), "PUT", "/v1/containers/x", "", "")
	if code != http.StatusMethodNotAllowed && code != 404 {
		t.Fatalf("PUT on a container: %d", code)
	}
}
