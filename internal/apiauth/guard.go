package apiauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/store"
)

// Tokens is where the guard finds tokens.
type Tokens interface {
	ListTokens(ctx context.Context) ([]store.TokenRecord, error)
	TouchToken(ctx context.Context, name string, t time.Time) error
}

// Identities verifies Apps' identity tokens.
type Identities interface {
	// VerifyApp returns the App an identity token names, or why it is
	// refused.
	VerifyApp(token string, now time.Time) (app string, err error)
	// AppSecrets are the secrets app's spec references.
	AppSecrets(ctx context.Context, app string) ([]string, error)
}

// Recorder records audit events.
type Recorder interface {
	AddEvent(ctx context.Context, e api.Event) error
}

// maxAppBody bounds the App body read to learn its name (as the API's
// own JSON bodies are bounded).
const maxAppBody = 1 << 20

// touchEvery is how often a token's last use is written: at most once a
// minute per token, not on every request.
const touchEvery = time.Minute

// Guard is the http.Handler of the API over TCP: it refuses a request
// without a valid bearer token (401), from an address with too many
// recent failures (429 with Retry-After), or one the token's role does
// not allow (403), and records an audit event for each mutating call
// and each refusal.
type Guard struct {
	Next    http.Handler
	Tokens  Tokens
	// Identities, when set, also accepts Apps' identity tokens (JWTs).
	Identities Identities
	Events  Recorder
	Limiter *Limiter
	Now     func() time.Time
	Log     *slog.Logger
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if wait, blocked := g.Limiter.Blocked(host); blocked {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeErr(w, http.StatusTooManyRequests, "unavailable", fmt.Sprintf("too many failed authentications from %s: retry in %ds", host, secs))
		return
	}
	tok, why := g.authenticate(r)
	if why != "" {
		g.record(r.Context(), api.EventWarning, "-", api.ReasonAuthFailed, fmt.Sprintf("%s %s from %s: %s", r.Method, r.URL.Path, host, why))
		if g.Limiter.Fail(host) {
			// Recorded once per blocking, not per refused request, so a
			// flood of requests cannot flood the events.
			g.record(r.Context(), api.EventWarning, "-", api.ReasonRateLimited, fmt.Sprintf("%s is refused (429) for up to %s: %d authentication failures within %s",
				host, g.Limiter.Window, g.Limiter.Max, g.Limiter.Window))
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="skiff"`)
		writeErr(w, http.StatusUnauthorized, "unauthorized", why+": give a valid token with --token or SKIFF_TOKEN (skiff token create, on the daemon's host)")
		return
	}
	call := Call{Method: r.Method, Path: r.URL.Path}
	if strings.HasPrefix(r.URL.Path, "/v1/secrets/") {
		if v := r.URL.Query().Get("reveal"); v != "" && v != "false" {
			call.Reveal = true
		}
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/apps" {
		call.App = appName(r)
	}
	if tok.Role == RoleApp {
		var err error
		if call.AppSecrets, err = g.Identities.AppSecrets(r.Context(), tok.App); err != nil {
			g.Log.Warn("read the secrets an App references", "app", tok.App, "err", err)
		}
	}
	if reason := Allow(tok, call); reason != "" {
		g.audit(r, tok.Name, http.StatusForbidden)
		writeErr(w, http.StatusForbidden, "forbidden", reason)
		return
	}
	if !Mutating(r.Method) {
		g.Next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	g.Next.ServeHTTP(sw, r)
	g.audit(r, tok.Name, sw.status())
}

// authenticate returns the request's token, or why there is none.
func (g *Guard) authenticate(r *http.Request) (api.Token, string) {
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" {
		return api.Token{}, "no token"
	}
	if !ok || secret == "" {
		return api.Token{}, "the Authorization header is not \"Bearer TOKEN\""
	}
	if g.Identities != nil && strings.Count(secret, ".") == 2 {
		app, err := g.Identities.VerifyApp(secret, g.Now())
		if err != nil {
			return api.Token{}, err.Error()
		}
		return api.Token{Name: "app:" + app, Role: RoleApp, App: app}, ""
	}
	recs, err := g.Tokens.ListTokens(r.Context())
	if err != nil {
		g.Log.Error("read API tokens", "err", err)
		return api.Token{}, "tokens cannot be read now"
	}
	var found *store.TokenRecord
	for i := range recs { // compare with every token: no early exit
		if Matches(recs[i].Hash, secret) {
			found = &recs[i]
		}
	}
	if found == nil {
		return api.Token{}, "unknown or revoked token"
	}
	now := g.Now()
	if found.Expires != nil && !now.Before(*found.Expires) {
		return api.Token{}, "token " + found.Name + " expired at " + found.Expires.UTC().Format(time.RFC3339)
	}
	if found.LastUsed != nil && now.Sub(*found.LastUsed) < touchEvery {
		return found.Token, ""
	}
	if err := g.Tokens.TouchToken(r.Context(), found.Name, now); err != nil {
		g.Log.Warn("record a token's use", "token", found.Name, "err", err)
	}
	return found.Token, ""
}

// appName reads the name of the App a POST /v1/apps applies, leaving the
// body for the handler.
func appName(r *http.Request) string {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAppBody+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil {
		return ""
	}
	var a struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	json.Unmarshal(b, &a)
	return a.Metadata.Name
}

// audit records a mutating call by who and its status.
func (g *Guard) audit(r *http.Request, who string, status int) {
	Audit(r.Context(), g.Events, g.Log, who, r, status)
}

func (g *Guard) record(ctx context.Context, typ, who, reason, msg string) {
	if err := g.Events.AddEvent(context.WithoutCancel(ctx), api.Event{Time: g.Now(), Kind: api.EventKindAPI, Name: who, Type: typ, Reason: reason, Message: msg}); err != nil {
		g.Log.Warn("record an audit event", "err", err)
	}
}

// Audit records the call r made by who, answered with status.
func Audit(ctx context.Context, rec Recorder, log *slog.Logger, who string, r *http.Request, status int) {
	typ := api.EventNormal
	if status >= 400 {
		typ = api.EventWarning
	}
	e := api.Event{Time: time.Now(), Kind: api.EventKindAPI, Name: who, Type: typ, Reason: api.ReasonAPICall,
		Message: fmt.Sprintf("%s %s -> %d from %s", r.Method, r.URL.RequestURI(), status, r.RemoteAddr)}
	if err := rec.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		log.Warn("record an audit event", "err", err)
	}
}

// AuditSocket wraps the handler of the unix socket: each change to the
// tokens is recorded as made by "socket". Other calls on the socket
// (root's, or the skiff group's) are not recorded: they are many, and
// the events kept are bounded, so they would push out the Apps' own.
func AuditSocket(next http.Handler, rec Recorder, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Mutating(r.Method) || !strings.HasPrefix(r.URL.Path, "/v1/tokens") {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		Audit(r.Context(), rec, log, "socket", r, sw.status())
	})
}

func writeErr(w http.ResponseWriter, code int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Message: msg, Kind: kind})
}

// statusWriter keeps the status a handler answered with; it passes
// flushes and hijacks (exec's upgraded stream) on.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over")
	}
	if w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return hj.Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.Flusher  = (*statusWriter)(nil)
	_ http.Hijacker = (*statusWriter)(nil)
)
