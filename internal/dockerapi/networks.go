package dockerapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
)

// networkAPI serves /networks over skiff's networks. Docker's default
// network "bridge" is skiff's default network (api.DefaultNetwork).
type networkAPI struct {
	networks   apiserver.Networks
	containers apiserver.Containers // for connect and disconnect; may be nil
	connector  apiserver.NetworkConnector
}

func init() {
	addRoutes(func(s *Server) {
		if s.svc.Networks == nil {
			return
		}
		a := &networkAPI{networks: s.svc.Networks, containers: s.svc.Containers, connector: s.svc.Connector}
		s.handle("GET", "/networks", a.list)
		s.handle("POST", "/networks/create", a.create)
		s.handle("POST", "/networks/prune", a.prune)
		s.handle("GET", "/networks/{id}", a.inspect)
		s.handle("DELETE", "/networks/{id}", a.remove)
		s.handle("POST", "/networks/{id}/connect", a.connect)
		s.handle("POST", "/networks/{id}/disconnect", a.disconnect)
	})
}

// lookup finds a network by name, ID or ID prefix; "bridge" is the
// default network unless a network has that name.
func (a *networkAPI) lookup(r *http.Request, ref string) (api.Network, error) {
	n, err := a.networks.Inspect(r.Context(), ref)
	if errors.Is(err, errdefs.ErrNotFound) && ref == network.NetworkBridge {
		return a.networks.Inspect(r.Context(), api.DefaultNetwork)
	}
	return n, err
}

// dockerNetwork is n as Docker describes a network.
func dockerNetwork(n api.Network) network.Inspect {
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	out := network.Inspect{Network: network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: "bridge", EnableIPv4: true,
		IPAM: network.IPAM{Driver: "default", Options: map[string]string{}}, Internal: n.Internal,
		Options: map[string]string{}, Labels: labels,
	}, Containers: map[string]network.EndpointResource{}}
	if n.Driver != "bridge" {
		out.Driver = n.Driver
	}
	// Options stay empty: clients compare them with the driver options
	// they asked for (docker-compose recreates a network whose differ).
	subnet, _ := netip.ParsePrefix(n.Subnet)
	cfg := network.IPAMConfig{Subnet: subnet}
	cfg.Gateway, _ = netip.ParseAddr(n.Gateway)
	if subnet.IsValid() {
		out.IPAM.Config = []network.IPAMConfig{cfg}
	}
	for id, ep := range n.Containers {
		res := network.EndpointResource{Name: ep.Name, EndpointID: id}
		if ip, err := netip.ParseAddr(ep.IP); err == nil {
			res.IPv4Address = netip.PrefixFrom(ip, max(subnet.Bits(), 0))
		}
		if mac, err := net.ParseMAC(ep.MAC); err == nil {
			res.MacAddress = network.HardwareAddr(mac)
		}
		out.Containers[id] = res
	}
	return out
}

func (a *networkAPI) list(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("name", "id", "label", "label!", "driver", "scope", "type", "dangling"); err != nil {
		return err
	}
	dangling, err := filterBool(f, "dangling", false)
	if err != nil {
		return err
	}
	nets, err := a.networks.List(r.Context())
	if err != nil {
		return err
	}
	out := []network.Inspect{}
	for _, n := range nets {
		d := dockerNetwork(n)
		builtin := n.Name == api.DefaultNetwork
		ok := f.matchAny("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
			f.matchAny("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
			f.matchAny("driver", func(v string) bool { return v == d.Driver }) &&
			f.matchAny("scope", func(v string) bool { return v == "local" }) &&
			f.matchAny("type", func(v string) bool { return (v == "builtin") == builtin }) &&
			f.matchLabels("label", n.Labels) && f.matchLabels("label!", n.Labels) &&
			(!f.has("dangling") || dangling == (len(n.Containers) == 0 && !builtin))
		if ok {
			out = append(out, d)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *networkAPI) inspect(w http.ResponseWriter, r *http.Request) error {
	n, err := a.lookup(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, dockerNetwork(n))
}

// create is POST /networks/create: a bridge network, internal or not,
// with labels and an optional subnet.
func (a *networkAPI) create(w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return errdefs.Invalid("a network needs a Name")
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return errdefs.Invalid("network driver %q is not served: skiff's networks are bridges (driver bridge)", req.Driver)
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return errdefs.Invalid("network %s: IPv6 networks are not served", req.Name)
	}
	if req.Scope == "swarm" || req.Ingress || req.ConfigOnly || req.ConfigFrom != nil {
		return errdefs.Invalid("network %s: swarm, ingress and config-only networks are not served", req.Name)
	}
	creq := api.NetworkCreateRequest{Name: req.Name, Internal: req.Internal, Labels: req.Labels}
	var warning string
	if req.IPAM != nil {
		if len(req.IPAM.Config) > 1 {
			return errdefs.Invalid("network %s: give one IPAM subnet, not %d", req.Name, len(req.IPAM.Config))
		}
		if len(req.IPAM.Config) == 1 {
			c := req.IPAM.Config[0]
			if c.Subnet.IsValid() {
				creq.Subnet = c.Subnet.String()
			}
			if c.Gateway.IsValid() || c.IPRange.IsValid() {
				warning = "skiff picks the gateway and address range of a subnet itself: the given ones are ignored"
			}
		}
	}
	n, err := a.networks.Create(r.Context(), creq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID, Warning: warning})
}

func (a *networkAPI) remove(w http.ResponseWriter, r *http.Request) error {
	n, err := a.lookup(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.networks.Remove(r.Context(), n.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// prune removes the networks no container is attached to (not the
// default network), those matching the label and until filters.
func (a *networkAPI) prune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("label", "label!", "until"); err != nil {
		return err
	}
	until, err := untilFilter(f)
	if err != nil {
		return err
	}
	nets, err := a.networks.List(r.Context())
	if err != nil {
		return err
	}
	report := network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range nets {
		if n.Name == api.DefaultNetwork || len(n.Containers) > 0 || !f.matchLabels("label", n.Labels) ||
			!f.matchLabels("label!", n.Labels) || (!until.IsZero() && !n.Created.Before(until)) {
			continue
		}
		err := a.networks.Remove(r.Context(), n.Name)
		if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
			continue // in use, or gone meanwhile
		}
		if err != nil {
			return err
		}
		report.NetworksDeleted = append(report.NetworksDeleted, n.Name)
	}
	return writeJSON(w, http.StatusOK, report)
}

// untilFilter reads the "until" filter: a duration before now, RFC 3339
// time or Unix timestamp; zero when not given.
func untilFilter(f filters) (time.Time, error) {
	vs := f["until"]
	if len(vs) == 0 {
		return time.Time{}, nil
	}
	v := vs[len(vs)-1]
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	var sec int64
	if _, err := fmt.Sscan(v, &sec); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, errdefs.Invalid("filter until=%q is not a duration (24h), RFC 3339 time or Unix timestamp", v)
}

// connect is POST /networks/{id}/connect: the container joins one more
// network (skiff's network connect), with the endpoint's aliases and
// address. Connecting a container to its first network is a no-op:
// docker-compose 1.29 disconnects each container it creates and connects
// it again with the aliases it was created with.
func (a *networkAPI) connect(w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	n, c, first, err := a.attachment(r, req.Container, "connect")
	if err != nil {
		return err
	}
	if first == n.Name {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	x := api.NetworkAttachment{Network: n.Name}
	if ep := req.EndpointConfig; ep != nil {
		x.Aliases = ep.Aliases
		if ep.IPAMConfig != nil {
			if ep.IPAMConfig.IPv6Address.IsValid() {
				return errdefs.Invalid("EndpointConfig.IPAMConfig.IPv6Address: skiff networks are IPv4 only")
			}
			if ep.IPAMConfig.IPv4Address.IsValid() {
				x.IP = ep.IPAMConfig.IPv4Address.String()
			}
		}
	}
	if err := a.connector.ConnectNetwork(r.Context(), c.ID, x); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// disconnect is POST /networks/{id}/disconnect: the container leaves a
// further network. Its first network stays: a container not running
// keeps it (docker-compose 1.29 disconnects the containers it creates,
// see connect), a running one is refused.
func (a *networkAPI) disconnect(w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	n, c, first, err := a.attachment(r, req.Container, "disconnect")
	if err != nil {
		return err
	}
	if first != n.Name {
		if err := a.connector.DisconnectNetwork(r.Context(), c.ID, n.Name, req.Force); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if c.State.Status != "running" {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return errdefs.Invalid("container %s cannot leave network %s, its first network: a skiff container keeps the network it was created on; remove it and create it again", c.Name, n.Name)
}

// attachment finds the network and the container of a connect or
// disconnect, and the container's first network.
func (a *networkAPI) attachment(r *http.Request, ref, verb string) (api.Network, api.Container, string, error) {
	if ref == "" {
		return api.Network{}, api.Container{}, "", errdefs.Invalid("network %s needs a Container", verb)
	}
	n, err := a.lookup(r, r.PathValue("id"))
	if err != nil {
		return api.Network{}, api.Container{}, "", err
	}
	if a.containers == nil || a.connector == nil {
		return api.Network{}, api.Container{}, "", errdefs.NotImplemented("this daemon serves no containers through the Docker API")
	}
	c, err := a.containers.Get(r.Context(), ref)
	if err != nil {
		return api.Network{}, api.Container{}, "", err
	}
	first := c.Config.Network
	if c.NetworkSettings != nil && c.NetworkSettings.Network != "" {
		first = c.NetworkSettings.Network
	}
	if first == "" {
		first = api.DefaultNetwork
	}
	return n, c, first, nil
}
