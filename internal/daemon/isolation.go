package daemon

import (
	"context"
	"fmt"
	"net/netip"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/container"
	"skiff.dev/skiff/internal/controller"
	"skiff.dev/skiff/internal/isolation"
	"skiff.dev/skiff/internal/network/firewall"
)

// isolatingNetworks tells the isolation enforcer of App replicas whose
// network comes up or goes, so the firewall knows a replica's address
// before its process starts and forgets it before the address is free
// for another container.
type isolatingNetworks struct {
	container.Networks
	iso    *isolation.Enforcer
	labels func(ctx context.Context, id string) (map[string]string, error)
}

var _ container.Networks = isolatingNetworks{}

// Setup sets up the network, then, for an App replica, has its address
// isolated; when that fails the network is torn down again.
func (n isolatingNetworks) Setup(ctx context.Context, req container.NetworkRequest) (*api.NetworkSettings, error) {
	set, err := n.Networks.Setup(ctx, req)
	if err != nil || set == nil {
		return set, err
	}
	ip, perr := netip.ParseAddr(set.IP)
	if perr != nil {
		return set, nil // no address of its own: network none or host
	}
	labels, err := n.labels(ctx, req.ContainerID)
	if err == nil && labels[controller.LabelApp] == "" {
		return set, nil
	}
	if err == nil {
		err = n.iso.Add(ctx, req.ContainerID, isolation.Replica{App: labels[controller.LabelApp], IP: ip})
	}
	if err != nil {
		n.Networks.Teardown(context.WithoutCancel(ctx), req.ContainerID)
		return nil, fmt.Errorf("isolate the replica on the network: %w", err)
	}
	return set, nil
}

// Teardown takes the container out of the isolation rules, then tears
// its network down.
func (n isolatingNetworks) Teardown(ctx context.Context, id string) error {
	if err := n.iso.Remove(ctx, id); err != nil {
		return err
	}
	return n.Networks.Teardown(ctx, id)
}

// newIsolation makes the enforcer of the isolation between Apps for
// d.networks' firewall.
func (d *Daemon) newIsolation() (*isolation.Enforcer, error) {
	fw, err := firewall.New(d.networks.Instance())
	if err != nil {
		return nil, err
	}
	return isolation.New(isolation.Config{Firewall: fw, Apps: d.db, Events: d.db, Logger: d.log.With("component", "isolation")}), nil
}

// startIsolation starts the enforcer with the App replicas whose network
// is up (after a restart, the rules are rebuilt the same). Without the
// kernel's bridge netfilter Apps are not isolated: that is logged as an
// error, and the daemon runs on.
func (d *Daemon) startIsolation(ctx context.Context) error {
	attached := d.ctrs.NetworkAttached()
	reps := map[string]isolation.Replica{}
	for _, c := range d.ctrs.List(ctx, true) {
		app := c.Config.Labels[controller.LabelApp]
		if app == "" || !attached[c.ID] || c.NetworkSettings == nil {
			continue
		}
		if ip, err := netip.ParseAddr(c.NetworkSettings.IP); err == nil {
			reps[c.ID] = isolation.Replica{App: app, IP: ip}
		}
	}
	if err := d.iso.Start(ctx, reps); err != nil {
		d.log.Error("Apps are not isolated from each other on the network", "err", err)
		return nil
	}
	return d.reg.Register(d.iso)
}

// containerLabels returns the labels of container id, from the store.
func (d *Daemon) containerLabels(ctx context.Context, id string) (map[string]string, error) {
	rec, err := d.db.GetContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return rec.Container.Config.Labels, nil
}

// checkReplicaLabels refuses the labels that mark App replicas on a
// container made through the API: a container carrying them would be
// taken for a replica, with its App's rights on the network.
func checkReplicaLabels(labels map[string]string) error {
	for _, k := range []string{controller.LabelApp, controller.LabelRevision, controller.LabelPrewarm} {
		if _, ok := labels[k]; ok {
			return errdefs.Invalid("label %s is reserved for the replicas of Apps: choose another label", k)
		}
	}
	return nil
}
