package compose

import (
	"context"
	"reflect"
	"testing"

	"skiff.dev/skiff/api"
)

// TestCreateRequestNetworks checks that a service on several networks
// joins the first by priority then name, and the others as further
// networks, each with the service name and that network's aliases, and
// that this is not reported as unsupported.
func TestCreateRequestNetworks(t *testing.T) {
	p, err := Load(context.Background(), LoadOptions{WorkDir: "testdata/config/networks"})
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	tests := []struct {
		service string
		network string
		aliases []string
		extra   []api.NetworkAttachment
	}{
		// back comes first by name, but it is internal: front gives the
		// default route, so it is the first network.
		{"api", "networks_front", []string{"api", "backend", "api.internal"}, []api.NetworkAttachment{{Network: "networks_back", Aliases: []string{"api", "api-back"}}}},
		{"worker", "company-shared", []string{"worker"}, []api.NetworkAttachment{{Network: "networks_back", Aliases: []string{"worker"}}}},
		{"proxy", "networks_front", []string{"proxy"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			req, err := CreateRequest(p, p.Services[tc.service], 1)
			if err != nil {
				t.Fatal(err)
			}
			c := req.Config
			if c.Network != tc.network || !reflect.DeepEqual(c.NetworkAliases, tc.aliases) || !reflect.DeepEqual(c.ExtraNetworks, tc.extra) {
				t.Fatalf("network %q aliases %v extra %+v, want %q %v %+v", c.Network, c.NetworkAliases, c.ExtraNetworks, tc.network, tc.aliases, tc.extra)
			}
		})
	}
}
