package apiserver

import (
	"context"
	"net/http"

	"skiff.dev/skiff/api"
)

// Networks is the network service the API serves (internal/network's
// Manager).
type Networks interface {
	Create(ctx context.Context, req api.NetworkCreateRequest) (api.Network, error)
	Remove(ctx context.Context, name string) error
	List(ctx context.Context) ([]api.Network, error)
	Inspect(ctx context.Context, name string) (api.Network, error)
}

// networkAPI serves /v1/networks over a Networks.
type networkAPI struct{ networks Networks }

// networkRoutes registers the network endpoints with h:
//
//	GET    /v1/networks         list
//	POST   /v1/networks         create (body api.NetworkCreateRequest)
//	GET    /v1/networks/{name}  inspect by name, ID or ID prefix
//	DELETE /v1/networks/{name}  remove
func networkRoutes(n Networks, h func(string, func(http.ResponseWriter, *http.Request) error)) {
	a := networkAPI{networks: n}
	h("GET /v1/networks", a.listNetworks)
	h("POST /v1/networks", a.createNetwork)
	h("GET /v1/networks/{name}", a.inspectNetwork)
	h("DELETE /v1/networks/{name}", a.removeNetwork)
}

func (a networkAPI) listNetworks(w http.ResponseWriter, r *http.Request) error {
	nets, err := a.networks.List(r.Context())
	if err != nil {
		return err
	}
	if nets == nil {
		nets = []api.Network{}
	}
	return writeJSON(w, 200, nets)
}

func (a networkAPI) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req api.NetworkCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	n, err := a.networks.Create(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, n)
}

func (a networkAPI) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := a.networks.Inspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, n)
}

func (a networkAPI) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := a.networks.Remove(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}
