package apiserver

import (
	"context"
	"net/http"

	"skiff.dev/skiff/api"
)

// Volumes is the named-volume service the API serves (internal/container's
// Manager).
type Volumes interface {
	VolumeCreate(ctx context.Context, req api.VolumeCreateRequest) (api.Volume, error)
	VolumeList(ctx context.Context) ([]api.Volume, error)
	VolumeInspect(ctx context.Context, name string) (api.Volume, error)
	VolumeRemove(ctx context.Context, name string) error
	VolumePrune(ctx context.Context) (api.VolumePruneResponse, error)
}

// volumeRoutes registers the volume endpoints with h:
//
//	GET    /v1/volumes         list
//	POST   /v1/volumes         create (body api.VolumeCreateRequest)
//	POST   /v1/volumes/prune   remove the volumes no container uses
//	GET    /v1/volumes/{name}  inspect
//	DELETE /v1/volumes/{name}  remove (409 while a container uses it)
func volumeRoutes(v Volumes, h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /v1/volumes", func(w http.ResponseWriter, r *http.Request) error {
		vols, err := v.VolumeList(r.Context())
		if err != nil {
			return err
		}
		if vols == nil {
			vols = []api.Volume{}
		}
		return writeJSON(w, 200, vols)
	})
	h("POST /v1/volumes", func(w http.ResponseWriter, r *http.Request) error {
		var req api.VolumeCreateRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		vol, err := v.VolumeCreate(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, 201, vol)
	})
	h("POST /v1/volumes/prune", func(w http.ResponseWriter, r *http.Request) error {
		res, err := v.VolumePrune(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, 200, res)
	})
	h("GET /v1/volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		vol, err := v.VolumeInspect(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return writeJSON(w, 200, vol)
	})
	h("DELETE /v1/volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := v.VolumeRemove(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(204)
		return nil
	})
}
