package apiauth_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/apiauth"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/store"
)

// fuzzTokens holds a fixed deployer and viewer token.
type fuzzTokens struct{ recs []store.TokenRecord }

func (f *fuzzTokens) ListTokens(context.Context) ([]store.TokenRecord, error) { return f.recs, nil }
func (f *fuzzTokens) TouchToken(context.Context, string, time.Time) error     { return nil }

type nopEvents struct{}

func (nopEvents) AddEvent(context.Context, api.Event) error { return nil }

// changedApps is an App service that records the names of the Apps the
// API asked it to change.
type changedApps struct {
	mu      sync.Mutex
	changed []string
}

func (a *changedApps) record(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.changed = append(a.changed, name)
}

func (a *changedApps) Apply(_ context.Context, app api.App) (api.App, error) {
	a.record(app.Metadata.Name)
	return app, nil
}
func (a *changedApps) Get(context.Context, string) (api.App, error)              { return api.App{}, nil }
func (a *changedApps) List(context.Context) ([]api.App, error)                   { return nil, nil }
func (a *changedApps) Delete(_ context.Context, name string) error               { a.record(name); return nil }
func (a *changedApps) Revisions(context.Context, string) ([]api.Revision, error) { return nil, nil }
func (a *changedApps) Replicas(context.Context, string) ([]api.Replica, error)   { return nil, nil }
func (a *changedApps) SetTraffic(_ context.Context, name string, _ []api.TrafficTarget) (api.App, error) {
	a.record(name)
	return api.App{}, nil
}
func (a *changedApps) Rollback(_ context.Context, name, _ string) (api.App, error) {
	a.record(name)
	return api.App{}, nil
}
func (a *changedApps) Scale(_ context.Context, name string, _, _ *int) (api.App, error) {
	a.record(name)
	return api.App{}, nil
}

var _ apiserver.Apps = (*changedApps)(nil)

// Fixed secrets of the fuzzed guard's tokens (the guard only sees their
// hashes).
const (
	deployerSecret = "skiff_deployer-secret-for-fuzzing-0000000000"
	viewerSecret   = "skiff_viewer-secret-for-fuzzing-00000000000000"
	deployerApps   = "a-*"
)

// fuzzMethods are the methods fuzzed: the mutating ones (reads pass the
// guard with any valid token, by design).
var fuzzMethods = []string{http.MethodPost, http.MethodDelete, http.MethodPut, http.MethodPatch, http.MethodOptions, "PURGE"}

// FuzzGuard puts the token guard in front of the real API router and
// checks, for any Authorization header, method, path and body, that:
//   - a request without the exact "Bearer SECRET" of a known token
//     reaches no handler and is answered 401;
//   - a viewer's request changes nothing;
//   - a deployer's request changes only Apps its pattern matches, as
//     the router and the App service understand the path and the body
//     (no path or JSON trick makes the guard and the router disagree).
//
// Services other than Apps are nil: a request the guard should have
// refused that reaches one panics, and fails the fuzz test.
func FuzzGuard(f *testing.F) {
	app := `{"apiVersion":"skiff.dev/v1","kind":"App","metadata":{"name":"a-1"},"spec":{"image":"x"}}`
	for _, s := range []struct {
		auth   uint8
		header string
		method uint8
		path   string
		body   string
	}{
		{1, "", 0, "/v1/apps", app},
		{1, "", 0, "/v1/apps", `{"metadata":{"name":"b"}}`},
		{1, "", 0, "/v1/apps", `{"metadata":{"name":"b"},"metadata":{"name":"a-1"}}`},
		{1, "", 0, "/v1/apps", `{"metadata":{"Name":"b","name":"a-1"}}`},
		{1, "", 0, "/v1/apps", `{"metadata":{"name":"a-1"}} {"metadata":{"name":"b"}}`},
		{1, "", 0, "/v1/apps", `{"metadata":{"name":"a-\u0031"}}`},
		{1, "", 1, "/v1/apps/a-1", ""},
		{1, "", 1, "/v1/apps/b", ""},
		{1, "", 1, "/v1/apps/a-1/../b", ""},
		{1, "", 1, "/v1/apps/a-1%2F..%2Fb", ""},
		{1, "", 1, "//v1/apps/a-1", ""},
		{1, "", 0, "/v1/apps/a-1/rollback", ""},
		{1, "", 0, "/v1/apps/b/rollback?to=a-1", ""},
		{1, "", 0, "/v1/apps/a-1/scale", `{"min":1}`},
		{1, "", 2, "/v1/apps/a-1/traffic", `[]`},
		{1, "", 0, "/v1/containers", `{}`},
		{1, "", 0, "/v1/tokens", `{}`},
		{2, "", 0, "/v1/apps", app},
		{2, "", 1, "/v1/apps/a-1", ""},
		{0, "Bearer " + deployerSecret + " ", 1, "/v1/apps/a-1", ""},
		{0, "bearer " + deployerSecret, 1, "/v1/apps/a-1", ""},
		{0, "Bearer  " + deployerSecret, 1, "/v1/apps/a-1", ""},
		{0, "Basic " + deployerSecret, 1, "/v1/apps/a-1", ""},
		{0, "Bearer skiff_", 1, "/v1/apps/a-1", ""},
		{0, "Bearer ", 1, "/v1/apps/a-1", ""},
		{0, "", 1, "/v1/apps/a-1", ""},
	} {
		f.Add(s.auth, s.header, s.method, s.path, []byte(s.body))
	}
	toks := &fuzzTokens{recs: []store.TokenRecord{
		{Token: api.Token{Name: "dep", Role: api.RoleDeployer, App: deployerApps}, Hash: apiauth.Hash(deployerSecret)},
		{Token: api.Token{Name: "view", Role: api.RoleViewer}, Hash: apiauth.Hash(viewerSecret)},
	}}
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, auth uint8, header string, method uint8, target string, body []byte) {
		apps := &changedApps{}
		reached := false
		srv := apiserver.New(apiserver.Services{Apps: apps}, log)
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			srv.ServeHTTP(w, r)
		})
		lim := apiauth.NewLimiter(1<<30, time.Minute)
		g := &apiauth.Guard{Next: next, Tokens: toks, Events: nopEvents{}, Limiter: lim, Now: time.Now, Log: log}
		r, err := http.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "http://skiff"+target, bytes.NewReader(body))
		if err != nil || r.URL.Host != "skiff" {
			return // not a request a client could send
		}
		r.RemoteAddr = "192.0.2.1:5000"
		role := ""
		switch auth % 3 {
		case 0:
			if header != "" {
				r.Header.Set("Authorization", header)
			}
			switch r.Header.Get("Authorization") {
			case "Bearer " + deployerSecret:
				role = api.RoleDeployer
			case "Bearer " + viewerSecret:
				role = api.RoleViewer
			}
		case 1:
			r.Header.Set("Authorization", "Bearer "+deployerSecret)
			role = api.RoleDeployer
		case 2:
			r.Header.Set("Authorization", "Bearer "+viewerSecret)
			role = api.RoleViewer
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		switch role {
		case "":
			if reached || w.Code != http.StatusUnauthorized {
				t.Fatalf("header %q: status %d, handler reached %v: want 401 and no handler", header, w.Code, reached)
			}
		case api.RoleViewer:
			if len(apps.changed) > 0 {
				t.Fatalf("a viewer's %s %s changed Apps %q", r.Method, target, apps.changed)
			}
		case api.RoleDeployer:
			for _, name := range apps.changed {
				if ok, _ := path.Match(deployerApps, name); !ok || name == "" {
					t.Fatalf("a deployer for %q changed App %q with %s %s %q", deployerApps, name, r.Method, target, body)
				}
			}
		}
	})
}
