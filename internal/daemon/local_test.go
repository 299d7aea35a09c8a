package daemon

import (
	"net/netip"
	"testing"
)

// TestLocalClientsWithoutNetworks: before the daemon has opened its state
// (a daemon taking over serves its ingress first), the host's own
// addresses are local and nothing fails for want of networks.
func TestLocalClientsWithoutNetworks(t *testing.T) {
	var l localClients
	if !l.Local(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("127.0.0.1, an address of this host, is not local")
	}
	if l.Local(netip.MustParseAddr("192.0.2.200")) {
		t.Fatal("a documentation address counts as local")
	}
}
