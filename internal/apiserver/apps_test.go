package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/controller"
	"skiff.dev/skiff/internal/store"
)

// appServer serves the App API over a real store and controller (not
// started: nothing reconciles, so only the API writes).
func appServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctl := controller.New(controller.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(ctl.Close)
	srv := httptest.NewServer(apiserver.New(apiserver.Services{Apps: ctl, Events: st}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv
}

func appJSON(name, version, resourceVersion string) string {
	rv := ""
	if resourceVersion != "" {
		rv = fmt.Sprintf(`, "resourceVersion": %q`, resourceVersion)
	}
	return fmt.Sprintf(`{"apiVersion": "skiff.dev/v1", "kind": "App", "metadata": {"name": %q%s},
		"spec": {"image": "hello", "env": [{"name": "VERSION", "value": %q}]}}`, name, rv, version)
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func postApp(t *testing.T, srv *httptest.Server, body string) (int, api.App, api.Error) {
	t.Helper()
	code, b := call(t, srv, "POST", "/v1/apps", body)
	var a api.App
	var e api.Error
	if code == 200 {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("answer %s: %v", b, err)
		}
	} else if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error answer %s: %v", b, err)
	}
	return code, a, e
}

func envOf(a api.App) string {
	if len(a.Spec.Env) == 0 {
		return ""
	}
	return a.Spec.Env[0].Value
}

func TestApplyResourceVersion(t *testing.T) {
	srv := appServer(t)
	code, v1, _ := postApp(t, srv, appJSON("shop", "v1", ""))
	if code != 200 || v1.Metadata.ResourceVersion == "" || v1.Metadata.Generation != 1 {
		t.Fatalf("create: %d %+v", code, v1.Metadata)
	}
	code, v2, _ := postApp(t, srv, appJSON("shop", "v2", v1.Metadata.ResourceVersion))
	if code != 200 || v2.Metadata.Generation != 2 || v2.Metadata.ResourceVersion == v1.Metadata.ResourceVersion {
		t.Fatalf("apply at the current version: %d %+v", code, v2.Metadata)
	}

	tests := []struct {
		name  string
		body  string
		wants []string
	}{
		{"stale version", appJSON("shop", "v3", v1.Metadata.ResourceVersion),
			[]string{"was changed since it was read", "resourceVersion " + v1.Metadata.ResourceVersion, "now at " + v2.Metadata.ResourceVersion, "read it again and retry"}},
		{"stale version, same spec", appJSON("shop", "v2", v1.Metadata.ResourceVersion),
			[]string{"resourceVersion " + v1.Metadata.ResourceVersion}},
		{"version of an App that does not exist", appJSON("gone", "v1", v1.Metadata.ResourceVersion),
			[]string{`app "gone" was deleted`, "read it again and retry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, e := postApp(t, srv, tc.body)
			if code != http.StatusConflict || e.Kind != "conflict" {
				t.Fatalf("got %d %+v, want 409 conflict", code, e)
			}
			for _, w := range tc.wants {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not say %q", e.Message, w)
				}
			}
		})
	}
	_, b := call(t, srv, "GET", "/v1/apps/shop", "")
	var got api.App
	json.Unmarshal(b, &got)
	if envOf(got) != "v2" || got.Metadata.Generation != 2 || got.Metadata.ResourceVersion != v2.Metadata.ResourceVersion {
		t.Fatalf("a refused apply changed the App: %s generation %d at %s", envOf(got), got.Metadata.Generation, got.Metadata.ResourceVersion)
	}
	if code, _ := call(t, srv, "GET", "/v1/apps/gone", ""); code != 404 {
		t.Fatalf("a refused apply created gone: %d", code)
	}
	// Without a version the apply replaces whatever is stored; the same
	// spec again writes nothing.
	code, v3, _ := postApp(t, srv, appJSON("shop", "v3", ""))
	if code != 200 || v3.Metadata.Generation != 3 {
		t.Fatalf("apply without a version: %d %+v", code, v3.Metadata)
	}
	if _, same, _ := postApp(t, srv, appJSON("shop", "v3", "")); same.Metadata.ResourceVersion != v3.Metadata.ResourceVersion || same.Metadata.Generation != 3 {
		t.Fatalf("unchanged apply wrote: %+v", same.Metadata)
	}
}

// TestConcurrentAppliesAllCount posts different specs of one App at once,
// and scales it meanwhile: every acknowledged apply has a generation of
// its own and the App ends at the one acknowledged last.
func TestConcurrentAppliesAllCount(t *testing.T) {
	srv := appServer(t)
	const n = 30
	var mu sync.Mutex
	byGen := map[int64]string{}
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, a, e := postApp(t, srv, appJSON("rapid", fmt.Sprintf("v%d", i), ""))
			mu.Lock()
			defer mu.Unlock()
			if code != 200 {
				t.Errorf("apply v%d: %d %s", i, code, e.Message)
				return
			}
			if prev, dup := byGen[a.Metadata.Generation]; dup {
				t.Errorf("applies %s and v%d were both acknowledged as generation %d", prev, i, a.Metadata.Generation)
			}
			byGen[a.Metadata.Generation] = envOf(a)
		}()
	}
	wg.Wait()
	_, b := call(t, srv, "GET", "/v1/apps/rapid", "")
	var got api.App
	json.Unmarshal(b, &got)
	if got.Metadata.Generation != n {
		t.Fatalf("generation %d after %d acknowledged spec changes", got.Metadata.Generation, n)
	}
	if envOf(got) != byGen[n] {
		t.Fatalf("stored spec is %s, the last acknowledged apply (generation %d) was %s", envOf(got), n, byGen[n])
	}

	// Scale races with applies of the same App: both are kept.
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 10 {
			if code, b := call(t, srv, "POST", "/v1/apps/rapid/scale", fmt.Sprintf(`{"max": %d}`, 20+i)); code != 200 {
				t.Errorf("scale: %d %s", code, b)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 10 {
			if code, _, e := postApp(t, srv, strings.Replace(appJSON("rapid", fmt.Sprintf("w%d", i), ""), `"spec": {`, `"spec": {"scale": {"max": 99}, `, 1)); code != 200 {
				t.Errorf("apply: %d %s", code, e.Message)
			}
		}
	}()
	wg.Wait()
	_, b = call(t, srv, "GET", "/v1/apps/rapid", "")
	json.Unmarshal(b, &got)
	if envOf(got) != "w9" || got.Metadata.Generation != n+20 {
		t.Fatalf("after 10 scales and 10 applies: env %s, generation %d; want w9, %d", envOf(got), got.Metadata.Generation, n+20)
	}
}
