package apiserver

import (
	"context"
	"net/http"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Networks is the network service the API serves (internal/network's
// Manager).
type Networks interface {
	Create(ctx context.Context, req api.NetworkCreateRequest) (api.Network, error)
	Remove(ctx context.Context, name string) error
	List(ctx context.Context) ([]api.Network, error)
	Inspect(ctx context.Context, name string) (api.Network, error)
}

// NetworkConnector joins containers to further networks and takes them
// off (the container service, which keeps the attachments in each
// container's config).
type NetworkConnector interface {
	ConnectNetwork(ctx context.Context, container string, x api.NetworkAttachment) error
	DisconnectNetwork(ctx context.Context, container, network string, force bool) error
}

// networkAPI serves /v1/networks over a Networks.
type networkAPI struct {
	networks  Networks
	connector NetworkConnector
}

// networkRoutes registers the network endpoints with h:
//
//	GET    /v1/networks         list
//	POST   /v1/networks         create (body api.NetworkCreateRequest)
//	GET    /v1/networks/{name}  inspect by name, ID or ID prefix
//	DELETE /v1/networks/{name}  remove
//	POST   /v1/networks/{name}/connect     (body api.NetworkConnectRequest; 204)
//	POST   /v1/networks/{name}/disconnect  (body api.NetworkDisconnectRequest; 204)
//
// The last two only with a NetworkConnector.
func networkRoutes(n Networks, c NetworkConnector, h func(string, func(http.ResponseWriter, *http.Request) error)) {
	a := networkAPI{networks: n, connector: c}
	h("GET /v1/networks", a.listNetworks)
	h("POST /v1/networks", a.createNetwork)
	h("GET /v1/networks/{name}", a.inspectNetwork)
	h("DELETE /v1/networks/{name}", a.removeNetwork)
	if c != nil {
		h("POST /v1/networks/{name}/connect", a.connect)
		h("POST /v1/networks/{name}/disconnect", a.disconnect)
	}
}

func (a networkAPI) connect(w http.ResponseWriter, r *http.Request) error {
	var req api.NetworkConnectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.Invalid("connect: name the container in \"container\"")
	}
	x := api.NetworkAttachment{Network: r.PathValue("name"), Aliases: req.Aliases, IP: req.IP}
	if err := a.connector.ConnectNetwork(r.Context(), req.Container, x); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

func (a networkAPI) disconnect(w http.ResponseWriter, r *http.Request) error {
	var req api.NetworkDisconnectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.Invalid("disconnect: name the container in \"container\"")
	}
	if err := a.connector.DisconnectNetwork(r.Context(), req.Container, r.PathValue("name"), req.Force); err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
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
