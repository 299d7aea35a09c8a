package container

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TestValidateConfigHostsDNS checks that the API refuses bad extra hosts
// and resolver settings, whatever client sent them.
func TestValidateConfigHostsDNS(t *testing.T) {
	ok := api.ContainerConfig{Image: "busybox", ExtraHosts: []string{"db:10.1.2.3"}, DNS: []string{"9.9.9.9"}, DNSSearch: []string{"example.com"}, DNSOptions: []string{"ndots:2"}}
	if err := validateConfig(&ok); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	bad := api.ContainerConfig{Image: "busybox", ExtraHosts: []string{"db=10.1.2.3"}}
	if err := validateConfig(&bad); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `"db=10.1.2.3"`) {
		t.Errorf("bad extra host: got %v, want an invalid-input error naming it", err)
	}
	none := api.ContainerConfig{Image: "busybox", Network: api.NetworkNone, ExtraHosts: []string{"gw:host-gateway"}}
	if err := validateConfig(&none); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "no gateway") {
		t.Errorf("host-gateway on --network none: got %v, want an invalid-input error", err)
	}
}
