package compose

import (
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
)

func ctr(n int) api.Container {
	return api.Container{Name: "p-s-" + strconv.Itoa(n), Config: api.ContainerConfig{Labels: map[string]string{LabelNumber: strconv.Itoa(n)}}}
}

// TestPlanReplicas checks that the lowest-numbered containers are kept
// whatever their numbers (a recreated replica takes a free one), the
// rest removed, and the missing ones counted.
func TestPlanReplicas(t *testing.T) {
	pl := planReplicas([]api.Container{ctr(4), ctr(2), ctr(0), ctr(3)}, 2)
	if len(pl.keep) != 2 || pl.keep[0].Name != "p-s-2" || pl.keep[1].Name != "p-s-3" || pl.create != 0 {
		t.Errorf("keep %+v create %d", pl.keep, pl.create)
	}
	if len(pl.remove) != 2 || pl.remove[0].Name != "p-s-0" || pl.remove[1].Name != "p-s-4" {
		t.Errorf("remove %+v", pl.remove)
	}
	pl = planReplicas([]api.Container{ctr(2)}, 3)
	if len(pl.keep) != 1 || pl.create != 2 || len(pl.remove) != 0 {
		t.Errorf("scale up: %+v", pl)
	}
	used := map[int]bool{2: true}
	if a, b := freeNumber(used), freeNumber(used); a != 1 || b != 3 {
		t.Errorf("free numbers %d, %d; want 1, 3", a, b)
	}
}

// TestRolling checks that fixed host ports and container names keep
// stop-then-start.
func TestRolling(t *testing.T) {
	withPorts := func(ps ...types.ServicePortConfig) types.ServiceConfig {
		var s types.ServiceConfig
		s.Ports = ps
		return s
	}
	if !rolling(withPorts(types.ServicePortConfig{Target: 80})) {
		t.Error("an unpublished port blocks rolling recreate")
	}
	if rolling(withPorts(types.ServicePortConfig{Target: 80, Published: "8080"})) {
		t.Error("a fixed host port allows rolling recreate")
	}
	if rolling(types.ServiceConfig{ContainerName: "x"}) {
		t.Error("a container_name allows rolling recreate")
	}
	var s types.ServiceConfig
	s.Networks = map[string]*types.ServiceNetworkConfig{"back": {Aliases: []string{"db"}}}
	if !rolling(s) {
		t.Error("a network alias blocks rolling recreate")
	}
	s.Networks["back"].Ipv4Address = "10.1.2.3"
	if rolling(s) {
		t.Error("an ipv4_address allows rolling recreate")
	}
}
