package api

import "time"

// Network modes a container can ask for besides a network name.
const (
	// NetworkNone gives the container a network namespace with loopback only.
	NetworkNone = "none"
	// NetworkHost shares the host's network namespace.
	NetworkHost = "host"
	// DefaultNetwork is the bridge network the daemon creates at start;
	// containers join it unless they name another network.
	DefaultNetwork = "skiff"
)

// PortMapping publishes a container port on the host.
type PortMapping struct {
	// HostIP is the host address to listen on; empty means 127.0.0.1 (see
	// docs/networking.md for why); "0.0.0.0" means every address.
	HostIP string `json:"hostIP,omitempty"`
	// HostPort is the host port; 0 picks a free one.
	HostPort      int    `json:"hostPort,omitempty"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"` // "tcp" (default) or "udp"
}

// Network is a container network as the API returns it.
type Network struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Driver is "bridge" (set up by skiff over netlink) or "cni" (a CNI
	// configuration list run through the CNI plugins).
	Driver  string `json:"driver"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	// Bridge is the host bridge interface.
	Bridge string `json:"bridge,omitempty"`
	// Internal networks have no route out of the host.
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// CNIConfig is the CNI configuration list of a "cni" network.
	CNIConfig string `json:"cniConfig,omitempty"`
	// Containers attached now: container ID → endpoint.
	Containers map[string]Endpoint `json:"containers,omitempty"`
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	Name    string   `json:"name"` // container name
	IP      string   `json:"ip"`
	MAC     string   `json:"mac,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
}

// NetworkCreateRequest is the body of POST /v1/networks.
type NetworkCreateRequest struct {
	Name string `json:"name"`
	// Subnet in CIDR form; empty picks a free /24 from skiff's pool.
	Subnet   string            `json:"subnet,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// CNIConfig, when set, makes a "cni" network from this CNI
	// configuration list (JSON).
	CNIConfig string `json:"cniConfig,omitempty"`
}

// NetworkAttachment names a network a container joins, with the extra
// DNS names it answers to there (besides its name and short ID).
type NetworkAttachment struct {
	Network string   `json:"network"`
	Aliases []string `json:"aliases,omitempty"`
	// IP is the container's IPv4 address on the network (a bridge
	// network, inside its subnet, not its gateway): empty leases the
	// next free one. An address another container holds is a conflict.
	IP string `json:"ip,omitempty"`
}

// NetworkConnectRequest is the body of POST /v1/networks/{name}/connect:
// it attaches a container to one more network, at once if it runs, and
// keeps the attachment in its config (ExtraNetworks) for its next starts.
type NetworkConnectRequest struct {
	// Container is a container's name, ID or unique ID prefix.
	Container string   `json:"container"`
	Aliases   []string `json:"aliases,omitempty"`
	// IP is the container's address on the network (see
	// NetworkAttachment.IP).
	IP string `json:"ip,omitempty"`
}

// NetworkDisconnectRequest is the body of POST
// /v1/networks/{name}/disconnect: it detaches a container from one of
// its extra networks and removes it from its config. A container's first
// network cannot be disconnected.
type NetworkDisconnectRequest struct {
	Container string `json:"container"`
	// Force succeeds when the container is not attached to the network.
	Force bool `json:"force,omitempty"`
}
