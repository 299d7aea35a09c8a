package apiauth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/store"
)

type fakeTokens struct{ recs []store.TokenRecord }

func (f *fakeTokens) ListTokens(context.Context) ([]store.TokenRecord, error) { return f.recs, nil }
func (f *fakeTokens) TouchToken(context.Context, string, time.Time) error     { return nil }

type fakeEvents struct {
	mu  sync.Mutex
	evs []api.Event
}

func (f *fakeEvents) AddEvent(_ context.Context, e api.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, e)
	return nil
}

// TestGuard checks the statuses of the guard and the audit events it
// records, on a handler that records whether it was reached.
func TestGuard(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	past := now.Add(-time.Second)
	secret, hash := NewSecret()
	oldSecret, oldHash := NewSecret()
	toks := &fakeTokens{recs: []store.TokenRecord{
		{Token: api.Token{Name: "dep", Role: api.RoleDeployer, App: "a-*"}, Hash: hash},
		{Token: api.Token{Name: "old", Role: api.RoleAdmin, Expires: &past}, Hash: oldHash},
	}}
	evs := &fakeEvents{}
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		b, _ := io.ReadAll(r.Body)
		if r.Method == "POST" && !strings.Contains(string(b), "a-1") {
			t.Errorf("the handler got body %q, not the App", b)
		}
		w.WriteHeader(201)
	})
	lim := NewLimiter(3, time.Minute)
	lim.Now = func() time.Time { return now }
	g := &Guard{Next: next, Tokens: toks, Events: evs, Limiter: lim, Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	call := func(method, path, token, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.7:4000"
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	app := `{"metadata":{"name":"a-1"}}`
	for _, c := range []struct {
		name, method, path, token, body string
		code                            int
		want                            string
	}{
		{"apply matching", "POST", "/v1/apps", secret, app, 201, ""},
		{"apply other", "POST", "/v1/apps", secret, `{"metadata":{"name":"b"}}`, 403, `does not match App \"b\"`},
		{"read", "GET", "/v1/apps", secret, "", 201, ""},
		{"secret keys", "GET", "/v1/secrets/db", secret, "", 201, ""},
		{"secret values", "GET", "/v1/secrets/db?reveal=true", secret, "", 403, "reading secret values (reveal) needs an admin token"},
		{"expired", "GET", "/v1/apps", oldSecret, "", 401, "token old expired"},
		{"no token", "GET", "/v1/apps", "", "", 401, "no token"},
		{"bad token", "GET", "/v1/apps", "skiff_x", "", 401, "unknown or revoked"},
		{"limited", "GET", "/v1/apps", secret, "", 429, "too many failed"},
	} {
		w := call(c.method, c.path, c.token, c.body)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: %d %s, want %d %q", c.name, w.Code, w.Body, c.code, c.want)
		}
		if c.code == 429 && w.Header().Get("Retry-After") != "60" {
			t.Errorf("%s: Retry-After %q, want 60", c.name, w.Header().Get("Retry-After"))
		}
	}
	if reached != 3 {
		t.Errorf("the handler was reached %d times, want 3 (apply, read, secret keys)", reached)
	}
	var got []string
	for _, e := range evs.evs {
		got = append(got, e.Name+" "+e.Reason+" "+e.Message)
	}
	all := strings.Join(got, "\n")
	for _, w := range []string{"dep Call POST /v1/apps -> 201 from 192.0.2.7:4000", "dep Call POST /v1/apps -> 403", "- AuthFailed", "- RateLimited 192.0.2.7"} {
		if !strings.Contains(all, w) {
			t.Errorf("audit events lack %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, "GET") && !strings.Contains(all, "AuthFailed GET") {
		t.Errorf("a read was audited:\n%s", all)
	}
}
