package controller

import (
	"context"
	"slices"
	"strings"

	"skiff.dev/skiff/api"
)

// SecretVersions reads the current versions of secrets.
type SecretVersions interface {
	// Versions returns the current version of each of names that exists.
	Versions(ctx context.Context, names []string) (map[string]int64, error)
}

// secretNames returns the secrets a's env and volumes use, sorted,
// without repeats.
func secretNames(a api.App) []string {
	var names []string
	for _, e := range a.Spec.Env {
		if name, _, ok := strings.Cut(e.SecretRef, "/"); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, v := range a.Spec.Volumes {
		if v.Secret != nil && !slices.Contains(names, v.Secret.Name) {
			names = append(names, v.Secret.Name)
		}
	}
	slices.Sort(names)
	return names
}

// secretVersions returns the current versions of the secrets a uses (nil
// when it uses none): what its next revision pins.
func (c *Controller) secretVersions(ctx context.Context, a api.App) (map[string]int64, error) {
	names := secretNames(a)
	if len(names) == 0 || c.cfg.Secrets == nil {
		return nil, nil
	}
	vers, err := c.cfg.Secrets.Versions(ctx, names)
	if err != nil || len(vers) == 0 {
		return nil, err
	}
	return vers, nil
}

// AppsUsingSecret names the Apps whose env or volumes use secret name,
// sorted.
func (c *Controller) AppsUsingSecret(ctx context.Context, name string) ([]string, error) {
	apps, err := c.cfg.Store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range apps {
		if slices.Contains(secretNames(a), name) {
			out = append(out, a.Metadata.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// SecretChanged reconciles the Apps that use secret name, so that a new
// version of it rolls them out as a new revision. It does not block on
// the rollout.
func (c *Controller) SecretChanged(name string) {
	apps, err := c.AppsUsingSecret(c.bg, name)
	if err != nil {
		c.log.Warn("find the apps using a secret", "secret", name, "err", err)
		return
	}
	for _, a := range apps {
		c.enqueue(a)
	}
}
