package compose

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// storeSecret reports whether the top-level secret d comes from skiff's
// secret store: `external: true` (its name: or key names the secret).
func storeSecret(d types.SecretConfig) bool {
	return bool(d.External)
}

// secretTarget is where the service secret sec shows in the container:
// its target, absolute or under /run/secrets, else /run/secrets/SOURCE.
func secretTarget(sec types.ServiceSecretConfig) string {
	target := sec.Target
	if target == "" {
		target = sec.Source
	}
	if !path.IsAbs(target) {
		target = "/run/secrets/" + target
	}
	return path.Clean(target)
}

// storeSecretName splits a store secret's name into the skiff secret and
// the key it picks ("NAME/KEY"; no key: the secret's only key).
func storeSecretName(d types.SecretConfig) (name, key string) {
	name, key, _ = strings.Cut(d.Name, "/")
	return name, key
}

// SecretMounts are the secret mounts of s's secrets kept in skiff's
// store, pinned to their current version: each a single file at its
// target, mode 0400 (or the service's mode:), owned by uid/gid (default:
// the container's user). A missing secret is NotFound, naming it and how
// to create it; a file secret in the directory of a store secret is
// Invalid (the store secrets' tmpfs would hide it).
func (e *Engine) SecretMounts(ctx context.Context, p *types.Project, s types.ServiceConfig) ([]api.SecretMount, error) {
	var out []api.SecretMount
	dirs := map[string]bool{}
	for _, sec := range s.Secrets {
		d, ok := p.Secrets[sec.Source]
		var m api.SecretMount
		var err error
		switch {
		case ok && storeSecret(d):
			m, err = e.storeSecretMount(ctx, s.Name, sec, d)
		case ok && copiedSecret(p, s, sec):
			m, err = e.copiedSecretMount(ctx, p, s.Name, sec, d)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		dirs[m.Target] = true
		out = append(out, m)
	}
	for _, sec := range s.Secrets {
		if d, ok := p.Secrets[sec.Source]; ok && !storeSecret(d) && !copiedSecret(p, s, sec) && dirs[path.Dir(secretTarget(sec))] {
			return nil, errdefs.Invalid("service %s: secret %s from a file shares the directory %s with secrets from skiff's store: give it a target in another directory",
				s.Name, sec.Source, path.Dir(secretTarget(sec)))
		}
	}
	return out, nil
}

// storeSecretMount is the mount of the service secret sec whose
// top-level definition d names a secret of skiff's store.
func (e *Engine) storeSecretMount(ctx context.Context, service string, sec types.ServiceSecretConfig, d types.SecretConfig) (api.SecretMount, error) {
	name, key := storeSecretName(d)
	st, err := e.C.Secret(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return api.SecretMount{}, errdefs.NotFound("service %s: secret %s is not in skiff's secret store: create it with `skiff secret create %s --from-literal value=...`", service, name, name)
	}
	if err != nil {
		return api.SecretMount{}, fmt.Errorf("service %s: secret %s: %w", service, name, err)
	}
	switch {
	case key == "" && len(st.Keys) == 1:
		key = st.Keys[0]
	case key == "":
		return api.SecretMount{}, errdefs.Invalid("service %s: secret %s has keys %s: pick one with `name: %s/KEY`", service, name, strings.Join(st.Keys, ", "), name)
	case !slices.Contains(st.Keys, key):
		return api.SecretMount{}, errdefs.NotFound("service %s: secret %s has no key %s (it has %s): add it with `skiff secret set`", service, name, key, strings.Join(st.Keys, ", "))
	}
	return secretMount(service, sec, name, key, st.Version)
}

// secretMount is the mount of key of version of store secret name as the
// service secret sec: a single file at its target, with its mode, uid
// and gid.
func secretMount(service string, sec types.ServiceSecretConfig, name, key string, version int64) (api.SecretMount, error) {
	target := secretTarget(sec)
	m := api.SecretMount{Target: path.Dir(target), Secret: name, Version: version,
		Items: []api.SecretItem{{Key: key, Path: path.Base(target)}}}
	if sec.Mode != nil {
		m.Mode = uint32(*sec.Mode)
	}
	var err error
	if m.UID, err = secretID(service, sec.Source, "uid", sec.UID); err != nil {
		return api.SecretMount{}, err
	}
	if m.GID, err = secretID(service, sec.Source, "gid", sec.GID); err != nil {
		return api.SecretMount{}, err
	}
	return m, nil
}

// secretID parses a secret's uid or gid ("" : nil, the container's user).
func secretID(service, secret, what, v string) (*uint32, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return nil, errdefs.Invalid("service %s: secret %s: %s %q must be a number", service, secret, what, v)
	}
	id := uint32(n)
	return &id, nil
}

// checkSecrets fails when a service of p uses a secret of skiff's store
// that is missing, before anything of the project is created.
func (e *Engine) checkSecrets(ctx context.Context, p *types.Project) error {
	for _, name := range sortedKeys(p.Services) {
		if _, err := e.SecretMounts(ctx, p, p.Services[name]); err != nil {
			return err
		}
	}
	return nil
}
