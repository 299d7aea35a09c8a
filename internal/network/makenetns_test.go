package network

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"skiff.dev/skiff/api"
)

// TestSetupMakeNetNS: a SetupRequest's MakeNetNS makes the namespace
// Setup attaches (a container with a user namespace has it owned by
// that namespace); Setup plumbs it as its own and Teardown removes it.
func TestSetupMakeNetNS(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, testConfig(t, netip.Addr{}))
	for _, network := range []string{api.NetworkNone, ""} {
		name := "mk-" + network
		if network == "" {
			name = "mk-bridge"
		}
		t.Run(name, func(t *testing.T) {
			id, files := container(t, name)
			var made []string
			s, err := m.Setup(ctx, SetupRequest{ContainerID: id, Name: name, Network: network, FilesDir: files,
				MakeNetNS: func(path string) error {
					made = append(made, path)
					return createNetNS(path)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if len(made) != 1 || made[0] != m.NetNSPath(id) {
				t.Fatalf("MakeNetNS was called for %v, want once for %s", made, m.NetNSPath(id))
			}
			st := inspectNS(t, m.NetNSPath(id))
			if len(st.Up) == 0 {
				t.Fatalf("the namespace MakeNetNS made was not plumbed: %+v", st)
			}
			if network == "" && s.IP == "" {
				t.Fatal("no address on the bridge network")
			}
			if err := m.Teardown(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(m.NetNSPath(id)); !os.IsNotExist(err) {
				t.Fatalf("Teardown left the namespace MakeNetNS made: %v", err)
			}
		})
	}
}
