package apiauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/store"
)

// TokenStore keeps tokens.
type TokenStore interface {
	Tokens
	CreateToken(ctx context.Context, t store.TokenRecord) error
	DeleteToken(ctx context.Context, name string) error
}

// Manager makes, lists and revokes tokens (the API's /v1/tokens, served
// on the unix socket only).
type Manager struct {
	Store TokenStore
	Now   func() time.Time
}

// Create makes a token and returns it with its secret, which is not
// kept.
func (m *Manager) Create(ctx context.Context, req api.TokenCreateRequest) (api.TokenCreateResponse, error) {
	now := m.Now()
	exp, err := CheckRequest(req, now)
	if err != nil {
		return api.TokenCreateResponse{}, err
	}
	if req.Name == "" {
		b := make([]byte, 3)
		rand.Read(b)
		req.Name = req.Role + "-" + hex.EncodeToString(b)
	}
	secret, hash := NewSecret()
	t := api.Token{Name: req.Name, Role: req.Role, App: req.App, Created: now, Expires: exp}
	if err := m.Store.CreateToken(ctx, store.TokenRecord{Token: t, Hash: hash}); err != nil {
		return api.TokenCreateResponse{}, err
	}
	return api.TokenCreateResponse{Token: t, Secret: secret}, nil
}

// List returns every token's description, never a secret or hash.
func (m *Manager) List(ctx context.Context) ([]api.Token, error) {
	recs, err := m.Store.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Token, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Token)
	}
	return out, nil
}

// Revoke deletes the token named name: it is refused from then on.
func (m *Manager) Revoke(ctx context.Context, name string) error {
	return m.Store.DeleteToken(ctx, name)
}
