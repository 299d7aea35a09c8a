package apiserver

import (
	"context"
	"errors"
	"io"
	"net/http"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/gitops"
)

// Sources is the GitOps service the API serves (internal/gitops'
// Manager).
type Sources interface {
	Add(ctx context.Context, s api.Source) (api.Source, error)
	Get(ctx context.Context, name string) (api.Source, error)
	List(ctx context.Context) ([]api.Source, error)
	Delete(ctx context.Context, name string) error
	Sync(ctx context.Context, name string) (api.Source, error)
	SetSuspend(ctx context.Context, name string, suspend bool) (api.Source, error)
	History(ctx context.Context, name string) ([]api.SourceHistoryEntry, error)
	Diff(ctx context.Context, name string) (api.SourceDiff, error)
	Hook(ctx context.Context, name string, call gitops.HookCall) (api.SourceHookResponse, error)
}

// sourceRoutes registers the source endpoints with h:
//
//	GET    /v1/sources                list
//	POST   /v1/sources                add (body api.Source: name and spec)
//	GET    /v1/sources/{name}         the source, with each App's health
//	DELETE /v1/sources/{name}         remove (its Apps keep running)
//	POST   /v1/sources/{name}/sync    sync now; answers once the sync ended
//	POST   /v1/sources/{name}/suspend stop applying (drift is only reported)
//	POST   /v1/sources/{name}/resume  apply again, syncing at once
//	GET    /v1/sources/{name}/history the syncs that changed something or failed
//	GET    /v1/sources/{name}/diff    what a sync would do now, changing nothing
//	POST   /hooks/sources/{name}      a webhook call (GitHub, GitLab, Gitea or a bearer token)
func sourceRoutes(s Sources, h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /v1/sources", func(w http.ResponseWriter, r *http.Request) error {
		out, err := s.List(r.Context())
		if err != nil {
			return err
		}
		if out == nil {
			out = []api.Source{}
		}
		return writeJSON(w, 200, out)
	})
	h("POST /v1/sources", func(w http.ResponseWriter, r *http.Request) error {
		var in api.Source
		if err := decode(r, &in); err != nil {
			return err
		}
		out, err := s.Add(r.Context(), in)
		if err != nil {
			return err
		}
		return writeJSON(w, 201, out)
	})
	one := func(fn func(ctx context.Context, name string) (api.Source, error)) func(http.ResponseWriter, *http.Request) error {
		return func(w http.ResponseWriter, r *http.Request) error {
			out, err := fn(r.Context(), r.PathValue("name"))
			if err != nil {
				return err
			}
			return writeJSON(w, 200, out)
		}
	}
	h("GET /v1/sources/{name}", one(s.Get))
	h("POST /v1/sources/{name}/sync", one(s.Sync))
	h("POST /v1/sources/{name}/suspend", one(func(ctx context.Context, n string) (api.Source, error) { return s.SetSuspend(ctx, n, true) }))
	h("POST /v1/sources/{name}/resume", one(func(ctx context.Context, n string) (api.Source, error) { return s.SetSuspend(ctx, n, false) }))
	h("DELETE /v1/sources/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Delete(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /v1/sources/{name}/history", func(w http.ResponseWriter, r *http.Request) error {
		out, err := s.History(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		if out == nil {
			out = []api.SourceHistoryEntry{}
		}
		return writeJSON(w, 200, out)
	})
	h("GET /v1/sources/{name}/diff", func(w http.ResponseWriter, r *http.Request) error {
		out, err := s.Diff(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return writeJSON(w, 200, out)
	})
	h("POST /hooks/sources/{name}", func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, gitops.MaxHookBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return errdefs.Invalid("the webhook body is larger than %d bytes", gitops.MaxHookBody)
			}
			return err
		}
		out, err := s.Hook(r.Context(), r.PathValue("name"), gitops.HookCall{Header: r.Header, Body: body})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusAccepted, out)
	})
}
