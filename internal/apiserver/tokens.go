package apiserver

import (
	"context"
	"net/http"

	"skiff.dev/skiff/api"
)

// Tokens manages API tokens. Its routes are served on the unix socket
// only: the TCP listener's guard refuses them to every token.
type Tokens interface {
	Create(ctx context.Context, req api.TokenCreateRequest) (api.TokenCreateResponse, error)
	List(ctx context.Context) ([]api.Token, error)
	Revoke(ctx context.Context, name string) error
}

func tokenRoutes(t Tokens, h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v1/tokens", func(w http.ResponseWriter, r *http.Request) error {
		var req api.TokenCreateRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		out, err := t.Create(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, 201, out)
	})
	h("GET /v1/tokens", func(w http.ResponseWriter, r *http.Request) error {
		out, err := t.List(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, 200, out)
	})
	h("DELETE /v1/tokens/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := t.Revoke(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(204)
		return nil
	})
}
