package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"skiff.dev/skiff/internal/identity"
)

// DefaultIdentityTTL is the lifetime of Apps' identity tokens.
const DefaultIdentityTTL = time.Hour

// identities are the Apps' identities (internal/identity): the issuer,
// the replicas' token files and their renewal.
type identities struct {
	d        *Daemon
	is       *identity.Issuer
	replicas *identity.Replicas
	stop     context.CancelFunc
}

// issuerURL is the identity tokens' issuer: --identity-issuer, else the
// TCP API's address, else https://skiff.DOMAIN.
func (c *Config) issuerURL() string {
	switch {
	case c.IdentityIssuer != "":
		return strings.TrimSuffix(c.IdentityIssuer, "/")
	case c.API.Addr != "":
		return "https://" + c.API.Addr
	}
	return "https://skiff." + c.Domain
}

// openIdentities opens the issuer and the replicas' grants, forgets the
// replicas removed while no daemon ran, and starts the renewals.
func (d *Daemon) openIdentities(ctx context.Context) error {
	dir := filepath.Join(d.cfg.Root, "identity")
	is, err := identity.Open(filepath.Join(dir, "keys"), d.cfg.issuerURL(), d.cfg.IdentityTokenTTL)
	if err != nil {
		return err
	}
	reps, err := identity.NewReplicas(is, filepath.Join(dir, "replicas"), d.cfg.IdentityTokenTTL, d.log.With("component", "identity"))
	if err != nil {
		return err
	}
	reps.Prune(func(name string) bool {
		_, err := d.ctrs.Get(ctx, name)
		return err == nil
	})
	rctx, stop := context.WithCancel(context.Background())
	go reps.Run(rctx)
	d.ids.Store(&identities{d: d, is: is, replicas: reps, stop: stop})
	return nil
}

func (i *identities) close() {
	if i != nil {
		i.stop()
	}
}

// Issue and Forget are the controller's Identities.
func (i *identities) Issue(app, revision, replica string, audiences []string) (string, error) {
	return i.replicas.Issue(app, revision, replica, audiences)
}
func (i *identities) Forget(replica string) { i.replicas.Forget(replica) }

// VerifyApp and AppSecrets are the TCP API guard's Identities.
func (i *identities) VerifyApp(token string, now time.Time) (string, error) {
	c, err := i.is.Verify(token, identity.Audience, now)
	return c.App, err
}

func (i *identities) AppSecrets(ctx context.Context, app string) ([]string, error) {
	apps := i.d.apps.Load()
	if apps == nil {
		return nil, nil
	}
	a, err := apps.Get(ctx, app)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range a.Spec.Env {
		if e.SecretRef != "" {
			name, _, _ := strings.Cut(e.SecretRef, "/")
			names = append(names, name)
		}
	}
	return names, nil
}

// withIdentityDocs serves the OpenID Connect discovery document and the
// JWKS, without authentication, in front of next.
func (d *Daemon) withIdentityDocs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := d.ids.Load()
		if ids == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		var doc any
		switch r.URL.Path {
		case identity.DiscoveryPath:
			doc = ids.is.Discovery()
		case identity.JWKSPath:
			doc = ids.is.JWKS()
		default:
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(doc)
	})
}
