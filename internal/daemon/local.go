package daemon

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/internal/network"
)

// localClients tells the ingress which clients are on this machine: one
// of the host's own addresses, or an address inside one of skiff's
// networks (another App or container). Internal Apps answer only them
// (and loopback clients). What it knows is read again at most once a
// second.
type localClients struct {
	// nets is the daemon's network manager while it has one (a daemon
	// taking over serves its ingress before it opens its state).
	nets atomic.Pointer[network.Manager]

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
	nets := l.nets.Load()
	if nets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ns, err := nets.List(ctx)
	if err != nil {
		return
	}
	for _, n := range ns {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			l.subnets = append(l.subnets, p.Masked())
		}
	}
}
