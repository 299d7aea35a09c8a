package e2e

import (
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// appCondition returns the reason and message of App name's condition
// typ when its status is status, and ok false otherwise.
func appCondition(t *testing.T, d *Daemon, name string, typ api.ConditionType, status api.ConditionStatus) (reason, msg string, ok bool) {
	t.Helper()
	for _, c := range getApp(t, d, name).Status.Conditions {
		if c.Type == typ && c.Status == status {
			return c.Reason, c.Message, true
		}
	}
	return "", "", false
}

// TestAppFurtherNetworks: an App whose spec.network.networks names a
// network that does not exist is not ready, with a NetworkNotFound
// condition naming it, and becomes ready once the network is made; its
// replicas then answer by the App's name and the aliases on that network,
// where any container reaches them (the network is a segment of its own),
// while on the default network the isolation still refuses a plain
// container.
func TestAppFurtherNetworks(t *testing.T) {
	d := env.daemon
	const net = "e2e-appnet-seg"
	d.Run("", "network", "rm", net)
	defer d.Run("", "network", "rm", net)
	defer d.Run("", "delete", "app", "e2e-appnet")
	if r := applyYAML(t, d, isolationApp("e2e-appnet", "", "  network:\n    networks: [{name: "+net+", aliases: [web]}]\n")); r.Code != 0 {
		t.Fatal(r)
	}
	eventually(t, 30*time.Second, "a NetworkNotFound condition naming the network", func() bool {
		reason, msg, ok := appCondition(t, d, "e2e-appnet", api.ConditionReady, api.ConditionFalse)
		return ok && reason == api.ReasonNetworkNotFound && strings.Contains(msg, "network "+net+" does not exist")
	})
	if reps := replicasOf(t, d, "e2e-appnet"); len(reps) != 0 {
		t.Fatalf("replicas made without their network: %+v", reps)
	}

	must(t, d, "network", "create", net)
	eventually(t, 60*time.Second, "the App ready once its network exists", appReady(t, d, "e2e-appnet"))
	ip, id := replicaIP(t, d, "e2e-appnet")
	c := inspect(t, d, id)
	if len(c.Config.ExtraNetworks) != 1 || c.Config.ExtraNetworks[0].Network != net {
		t.Fatalf("replica's further networks: %+v", c.Config.ExtraNetworks)
	}

	for _, name := range []string{"web", "e2e-appnet"} {
		r := d.Run("", "run", "--rm", "--network", net, "busybox", "sh", "-c", probeHTTP(name))
		if got := strings.TrimSpace(r.Stdout); got != "reached" {
			t.Fatalf("a container on %s could not reach the App as %s: %q %s", net, name, got, r)
		}
	}
	if got := fromContainer(t, d, ip); got != "refused" {
		t.Fatalf("a plain container on the default network reached the App's replica at %s: %q", ip, got)
	}
}
