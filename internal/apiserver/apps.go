package apiserver

import (
	"context"
	"net/http"
	"strconv"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/store"
)

// Apps is the App controller the API serves.
type Apps interface {
	Apply(ctx context.Context, a api.App) (api.App, error)
	Get(ctx context.Context, name string) (api.App, error)
	List(ctx context.Context) ([]api.App, error)
	Delete(ctx context.Context, name string) error
	Revisions(ctx context.Context, name string) ([]api.Revision, error)
	Replicas(ctx context.Context, name string) ([]api.Replica, error)
	SetTraffic(ctx context.Context, name string, traffic []api.TrafficTarget) (api.App, error)
	Rollback(ctx context.Context, name, to string) (api.App, error)
	Scale(ctx context.Context, name string, min, max *int) (api.App, error)
}

// Events lists recorded events.
type Events interface {
	ListEvents(ctx context.Context, f store.EventFilter) ([]api.Event, error)
}

// ScaleRequest is the body of POST /v1/apps/{name}/scale.
type ScaleRequest struct {
	Min *int `json:"min,omitempty"`
	Max *int `json:"max,omitempty"`
}

func (s *Server) appRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) error {
		apps, err := s.apps.List(r.Context())
		if err != nil {
			return err
		}
		if apps == nil {
			apps = []api.App{}
		}
		return writeJSON(w, 200, apps)
	})
	h("POST /v1/apps", func(w http.ResponseWriter, r *http.Request) error {
		var a api.App
		if err := decode(r, &a); err != nil {
			return err
		}
		out, err := s.apps.Apply(r.Context(), a)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, out)
	})
	h("GET /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) error {
		a, err := s.apps.Get(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return writeJSON(w, 200, a)
	})
	h("DELETE /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := s.apps.Delete(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(204)
		return nil
	})
	h("GET /v1/apps/{name}/revisions", func(w http.ResponseWriter, r *http.Request) error {
		revs, err := s.apps.Revisions(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		if revs == nil {
			revs = []api.Revision{}
		}
		return writeJSON(w, 200, revs)
	})
	h("GET /v1/replicas", func(w http.ResponseWriter, r *http.Request) error {
		reps, err := s.apps.Replicas(r.Context(), r.URL.Query().Get("app"))
		if err != nil {
			return err
		}
		if reps == nil {
			reps = []api.Replica{}
		}
		return writeJSON(w, 200, reps)
	})
	h("PUT /v1/apps/{name}/traffic", func(w http.ResponseWriter, r *http.Request) error {
		var t []api.TrafficTarget
		if err := decode(r, &t); err != nil {
			return err
		}
		a, err := s.apps.SetTraffic(r.Context(), r.PathValue("name"), t)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, a)
	})
	h("POST /v1/apps/{name}/rollback", func(w http.ResponseWriter, r *http.Request) error {
		a, err := s.apps.Rollback(r.Context(), r.PathValue("name"), r.URL.Query().Get("to"))
		if err != nil {
			return err
		}
		return writeJSON(w, 200, a)
	})
	h("POST /v1/apps/{name}/scale", func(w http.ResponseWriter, r *http.Request) error {
		var req ScaleRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		if req.Min == nil && req.Max == nil {
			return errdefs.Invalid("scale needs min, max or both")
		}
		a, err := s.apps.Scale(r.Context(), r.PathValue("name"), req.Min, req.Max)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, a)
	})
	h("GET /v1/events", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		f := store.EventFilter{Kind: q.Get("kind"), Name: q.Get("name")}
		var err error
		if f.Since, err = parseTime("since", q.Get("since")); err != nil {
			return err
		}
		if v := q.Get("limit"); v != "" {
			if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 0 {
				return errdefs.Invalid("query parameter limit=%q must be a number", v)
			}
		}
		evs, err := s.events.ListEvents(r.Context(), f)
		if err != nil {
			return err
		}
		if evs == nil {
			evs = []api.Event{}
		}
		return writeJSON(w, 200, evs)
	})
}
