package apiserver

import (
	"context"
	"net/http"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Secrets is the secrets service the API serves (internal/secrets'
// Store). Only Reveal returns values.
type Secrets interface {
	Create(ctx context.Context, name string, data map[string][]byte) (api.Secret, error)
	Set(ctx context.Context, name string, data map[string][]byte) (api.Secret, error)
	List(ctx context.Context) ([]api.Secret, error)
	Inspect(ctx context.Context, name string) (api.Secret, error)
	Reveal(ctx context.Context, name string) (api.SecretValues, error)
	Delete(ctx context.Context, name string) error
	RotateKey(ctx context.Context) error
}

// secretAPI serves /v1/secrets over a Secrets.
type secretAPI struct{ secrets Secrets }

// secretRoutes registers the secret endpoints with h:
//
//	GET    /v1/secrets         list (names, keys, versions)
//	POST   /v1/secrets         create (body api.SecretWriteRequest)
//	GET    /v1/secrets/{name}  inspect; with ?reveal=true the values (api.SecretValues)
//	PUT    /v1/secrets/{name}  write a new version (body api.SecretWriteRequest)
//	DELETE /v1/secrets/{name}  remove (409 while an App uses it)
//	POST   /v1/secrets/rotate-key  reseal the data key under a new key file
func secretRoutes(s Secrets, h func(string, func(http.ResponseWriter, *http.Request) error)) {
	a := secretAPI{secrets: s}
	h("GET /v1/secrets", a.list)
	h("POST /v1/secrets", a.create)
	h("GET /v1/secrets/{name}", a.inspect)
	h("PUT /v1/secrets/{name}", a.set)
	h("DELETE /v1/secrets/{name}", a.remove)
	h("POST /v1/secrets/rotate-key", a.rotateKey)
}

func (a secretAPI) rotateKey(w http.ResponseWriter, r *http.Request) error {
	if err := a.secrets.RotateKey(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a secretAPI) list(w http.ResponseWriter, r *http.Request) error {
	secs, err := a.secrets.List(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, secs)
}

func (a secretAPI) create(w http.ResponseWriter, r *http.Request) error {
	var req api.SecretWriteRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	sec, err := a.secrets.Create(r.Context(), req.Name, req.Data)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, sec)
}

func (a secretAPI) set(w http.ResponseWriter, r *http.Request) error {
	var req api.SecretWriteRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	if req.Name != "" && req.Name != name {
		return errdefs.Invalid("the body names secret %q but the path names %q: leave name out of the body", req.Name, name)
	}
	sec, err := a.secrets.Set(r.Context(), name, req.Data)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, sec)
}

func (a secretAPI) inspect(w http.ResponseWriter, r *http.Request) error {
	switch r.URL.Query().Get("reveal") {
	case "true", "1":
		vals, err := a.secrets.Reveal(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return writeJSON(w, 200, vals)
	case "", "false", "0":
	default:
		return errdefs.Invalid("reveal must be true or false")
	}
	sec, err := a.secrets.Inspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, sec)
}

func (a secretAPI) remove(w http.ResponseWriter, r *http.Request) error {
	if err := a.secrets.Delete(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
