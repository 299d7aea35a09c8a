package isolation

import (
	"net/netip"
	"slices"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/network/firewall"
)

// Replica is one App replica whose network is up.
type Replica struct {
	App string
	IP  netip.Addr
}

// Policies returns the firewall policies of apps, whose replicas are
// replicas (pure). Every App gets a policy, also one without replicas (its
// refusal counter lives as long as the App); replicas of Apps not in apps
// (deleted, still draining) are neither protected nor allowed anywhere.
func Policies(apps []api.App, replicas []Replica) []firewall.AppPolicy {
	ips := map[string][]netip.Addr{}
	for _, r := range replicas {
		if r.IP.IsValid() {
			ips[r.App] = append(ips[r.App], r.IP)
		}
	}
	out := make([]firewall.AppPolicy, 0, len(apps))
	for _, a := range apps {
		p := firewall.AppPolicy{Name: a.Metadata.Name, IPs: sorted(ips[a.Metadata.Name])}
		var from []netip.Addr
		for _, peer := range Allowed(a, apps) {
			if peer != a.Metadata.Name {
				from = append(from, ips[peer]...)
			}
		}
		p.From = sorted(from)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b firewall.AppPolicy) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Allowed returns the names of the Apps of apps that a's allowFrom
// selects, sorted, each once. An entry naming an App that does not exist
// selects nothing until it does.
func Allowed(a api.App, apps []api.App) []string {
	var out []string
	for _, peer := range a.Spec.Network.AllowFrom {
		for _, b := range apps {
			switch {
			case peer.App != "" && peer.App == b.Metadata.Name,
				peer.Selector != nil && peer.Selector.Matches(b.Metadata.Labels):
				out = append(out, b.Metadata.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sorted(addrs []netip.Addr) []netip.Addr {
	if len(addrs) == 0 {
		return nil
	}
	out := slices.Clone(addrs)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
