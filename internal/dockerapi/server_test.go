package dockerapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/system"

	"skiff.dev/skiff/api"
)

type fakeSystem struct{}

func (fakeSystem) Info(context.Context) (api.Info, error) {
	return api.Info{Containers: 3, ContainersRunning: 1, Images: 2, Runtime: "runc", Version: "1.2.3", Root: "/var/lib/skiff"}, nil
}
func (fakeSystem) Version() api.VersionInfo {
	return api.VersionInfo{Version: "1.2.3", GoVersion: "go1.26"}
}

func serve(t *testing.T, s *Server, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestVersionNegotiation(t *testing.T) {
	s := New(Services{System: fakeSystem{}}, nil)
	for _, tc := range []struct {
		name, method, path string
		code               int
		body               string // substring of the body
	}{
		{"ping", "GET", "/_ping", 200, "OK"},
		{"ping versioned", "GET", "/v1.43/_ping", 200, "OK"},
		{"ping head", "HEAD", "/_ping", 200, ""},
		{"version unversioned", "GET", "/version", 200, `"ApiVersion":"1.51"`},
		{"oldest version", "GET", "/v1.24/version", 200, `"MinAPIVersion":"1.24"`},
		{"newest version", "GET", "/v1.51/info", 200, `"ServerVersion":"1.2.3"`},
		{"too old", "GET", "/v1.12/version", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"},
		{"too new", "GET", "/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.51"},
		{"unserved", "POST", "/v1.47/swarm/init", 501, "skiff does not serve the Docker API endpoint POST /swarm/init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(t, s, tc.method, tc.path)
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%s %s = %d %s, want %d with %q", tc.method, tc.path, res.StatusCode, b, tc.code, tc.body)
			}
			if got := res.Header.Get("Api-Version"); got != APIVersion {
				t.Errorf("Api-Version header %q, want %s", got, APIVersion)
			}
			if res.StatusCode >= 400 {
				var e errorBody
				if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
					t.Errorf("error body %s is not Docker's {\"message\": ...}", b)
				}
			}
		})
	}
}

func TestInfo(t *testing.T) {
	s := New(Services{System: fakeSystem{}}, nil)
	res := serve(t, s, "GET", "/v1.47/info")
	var in system.Info
	if err := json.NewDecoder(res.Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	if in.Containers != 3 || in.ContainersRunning != 1 || in.ContainersStopped != 2 || in.Images != 2 || in.OSType != "linux" || in.NCPU == 0 {
		t.Fatalf("info = %+v", in)
	}
}

func TestParseFilters(t *testing.T) {
	for _, raw := range []string{`{"label":{"a=b":true},"status":{"running":true}}`, `{"label":["a=b"],"status":["running"]}`} {
		r := httptest.NewRequest("GET", "/containers/json?filters="+strings.ReplaceAll(raw, `"`, "%22"), nil)
		f, err := parseFilters(r)
		if err != nil {
			t.Fatal(err)
		}
		if !f.matchLabels("label", map[string]string{"a": "b"}) || f.matchLabels("label", map[string]string{"a": "c"}) {
			t.Errorf("%s: label a=b does not match as it should", raw)
		}
		if err := f.check("label"); err == nil || !strings.Contains(err.Error(), "invalid filter 'status'") {
			t.Errorf("%s: check = %v, want invalid filter 'status'", raw, err)
		}
	}
}
