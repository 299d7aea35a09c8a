package container

import (
	"context"
	"errors"
	"slices"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// ConnectNetwork joins container ref to one more network (docker network
// connect): the attachment is added to its config's ExtraNetworks, kept
// for its next starts, and a container whose network is attached now (a
// running or prepared one) joins at once. A container already on the
// network is ErrConflict; a container on network none or host, or a
// network that cannot be a further one, ErrInvalid.
func (m *Manager) ConnectNetwork(ctx context.Context, ref string, x api.NetworkAttachment) error {
	if m.cfg.Networks == nil {
		return errdefs.Invalid("this daemon has no networking: containers cannot join networks")
	}
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	cfg, attached, gone, id, name := e.rec.Config, e.rec.NetworkSettings != nil, e.gone, e.rec.ID, e.rec.Name
	e.mu.Unlock()
	if gone {
		return errdefs.NotFound("no such container %q", ref)
	}
	if cfg.Network == x.Network || slices.ContainsFunc(cfg.ExtraNetworks, func(a api.NetworkAttachment) bool { return a.Network == x.Network }) {
		return errdefs.Conflict("container %s is already on network %s", name, x.Network)
	}
	extra := append(slices.Clone(cfg.ExtraNetworks), x)
	if err := m.cfg.Networks.Check(ctx, api.NetworkAttachment{Network: cfg.Network}, extra, nil); err != nil {
		return err
	}
	var set *api.NetworkSettings
	if attached {
		if set, err = m.cfg.Networks.Connect(ctx, id, x); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.Config.ExtraNetworks = extra
	if set != nil {
		e.rec.NetworkSettings = set
	}
	return m.persistConfig(ctx, e)
}

// DisconnectNetwork takes container ref off one of its further networks
// (docker network disconnect), at once if it is attached now, and removes
// the network from its config. A network it is not on is ErrNotFound,
// unless force; its first network cannot be disconnected (ErrInvalid).
func (m *Manager) DisconnectNetwork(ctx context.Context, ref, network string, force bool) error {
	if m.cfg.Networks == nil {
		return errdefs.Invalid("this daemon has no networking: containers have no networks")
	}
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	cfg, attached, gone, id, name := e.rec.Config, e.rec.NetworkSettings != nil, e.gone, e.rec.ID, e.rec.Name
	e.mu.Unlock()
	if gone {
		return errdefs.NotFound("no such container %q", ref)
	}
	if cfg.Network == network {
		return errdefs.Invalid("network %s is the first network of container %s: it cannot be disconnected; recreate the container on another network", network, name)
	}
	i := slices.IndexFunc(cfg.ExtraNetworks, func(a api.NetworkAttachment) bool { return a.Network == network })
	if i < 0 {
		if force {
			return nil
		}
		return errdefs.NotFound("container %s is not on network %s", name, network)
	}
	var set *api.NetworkSettings
	if attached {
		set, err = m.cfg.Networks.Disconnect(ctx, id, network)
		if err != nil && !(force && errors.Is(err, errdefs.ErrNotFound)) {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.Config.ExtraNetworks = slices.Delete(slices.Clone(cfg.ExtraNetworks), i, i+1)
	if set != nil {
		e.rec.NetworkSettings = set
	}
	return m.persistConfig(ctx, e)
}

// persistConfig writes e's config and state and announces them; callers
// hold e.mu.
func (m *Manager) persistConfig(ctx context.Context, e *entry) error {
	err := m.cfg.Store.PutContainerConfig(context.WithoutCancel(ctx), &e.rec)
	if m.cfg.Notify != nil {
		m.cfg.Notify(e.rec.Container, false)
	}
	return err
}
