package daemon

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"time"

	"skiff.dev/skiff/internal/registry"
)

// RegistryConfig configures the registry the daemon serves its image
// store with (see internal/registry); it is off while Addr is empty.
type RegistryConfig struct {
	// Addr is HOST:PORT; plain HTTP only on a loopback host.
	Addr string
	// TLSCert and TLSKey are the certificate and key to serve with.
	TLSCert, TLSKey string
	// TLSLocal serves with a certificate from skiff's local CA under
	// ROOT/registry (ca.crt, for clients to trust).
	TLSLocal bool
	// AnonymousRead are repository patterns anyone may pull
	// ("public/*").
	AnonymousRead []string
	// Delete enables deleting manifests, tags and blobs.
	Delete bool
	// Strict refuses manifests of unknown media types.
	Strict bool
	// UploadMaxAge is how long an idle upload, and a received blob no
	// manifest names yet, is kept from skiff image prune (default
	// image.DefaultUploadMaxAge).
	UploadMaxAge time.Duration
}

func (rc RegistryConfig) listenConfig(dir string) registry.ListenConfig {
	return registry.ListenConfig{Addr: rc.Addr, CertFile: rc.TLSCert, KeyFile: rc.TLSKey, LocalCA: rc.TLSLocal, Dir: dir}
}

// check refuses a registry configuration that cannot serve, before the
// daemon starts anything.
func (rc RegistryConfig) check() error {
	if rc.Addr == "" {
		return nil
	}
	if err := registry.CheckPatterns(rc.AnonymousRead); err != nil {
		return err
	}
	return rc.listenConfig("").Check()
}

// RegistryDir is the directory under the root for the registry's users
// file (htpasswd) and local CA.
const RegistryDir = "registry"

// RegistryUsersFile is the htpasswd file of registry users under
// RegistryDir.
const RegistryUsersFile = "htpasswd"

// startRegistry listens on the registry address and serves the image
// store there, when configured.
func (d *Daemon) startRegistry(ctx context.Context) error {
	rc := d.cfg.Registry
	if rc.Addr == "" {
		return nil
	}
	dir := filepath.Join(d.cfg.Root, RegistryDir)
	ln, caPath, err := registry.Listen(ctx, rc.listenConfig(caDir(d.cfg.Root)))
	if err != nil {
		return err
	}
	ctrs := d.ctrs
	h := registry.New(registry.Config{
		Store:       d.images,
		Access:      &registry.Access{UsersFile: filepath.Join(dir, RegistryUsersFile), AnonymousRead: rc.AnonymousRead},
		AllowDelete: rc.Delete,
		InUse:       func(id string) bool { return ctrs != nil && ctrs.ImageInUse(id) },
		MaxBlobSize: d.cfg.MaxImageSize,
		Logger:      d.log.With("component", "registry"),
	})
	d.registrySrv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func(srv *http.Server) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("registry stopped", "err", err)
		}
	}(d.registrySrv)
	args := []any{"addr", ln.Addr().String(), "users", filepath.Join(dir, RegistryUsersFile)}
	if caPath != "" {
		args = append(args, "ca", caPath)
		d.log.Info("registry clients must trust the CA certificate "+caPath, "addr", ln.Addr().String())
	}
	d.log.Info("registry serving the image store", args...)
	return nil
}

// stopRegistry closes the registry's listener and connections.
func (d *Daemon) stopRegistry() {
	if d.registrySrv != nil {
		d.registrySrv.Close()
		d.registrySrv = nil
	}
}
