package daemon

import "context"

// secretUsers asks the App controller, once it runs, which Apps use a
// secret (none before: the secrets store opens first).
type secretUsers struct{ d *Daemon }

func (u secretUsers) AppsUsingSecret(ctx context.Context, name string) ([]string, error) {
	if apps := u.d.apps.Load(); apps != nil {
		return apps.AppsUsingSecret(ctx, name)
	}
	return nil, nil
}

// secretChanged rolls the Apps that use secret name.
func (d *Daemon) secretChanged(name string) {
	if apps := d.apps.Load(); apps != nil {
		apps.SecretChanged(name)
	}
}
