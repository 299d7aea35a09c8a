package daemon

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"skiff.dev/skiff/api"
)

// networkLister lists skiff's networks.
type networkLister interface {
	List(ctx context.Context) ([]api.Network, error)
}

// localClients tells the ingress which clients are on this machine: one
// of the host's own addresses, or an address inside one of skiff's
// networks (another App or container). Internal Apps answer only them
// (and loopback clients). What it knows is read again at most once a
// second.
type localClients struct {
	nets networkLister

	mu      sync.Mutex
	read    time.Time
	addrs   map[netip.Addr]bool
	subnets []netip.Prefix
}

// Local reports whether ip is on this machine.
func (l *localClients) Local(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.read) > time.Second {
		l.refresh()
	}
	if l.addrs[ip] {
		return true
	}
	for _, p := range l.subnets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refresh reads the host's addresses and the networks' subnets; the
// caller holds l.mu.
func (l *localClients) refresh() {
	l.read = time.Now()
	l.addrs = map[netip.Addr]bool{}
	if ifas, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifas {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				l.addrs[p.Addr().Unmap()] = true
			}
		}
	}
	l.subnets = l.subnets[:0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ns, err := l.nets.List(ctx)
	if err != nil {
		return
	}
	for _, n := range ns {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			l.subnets = append(l.subnets, p.Masked())
		}
	}
}
