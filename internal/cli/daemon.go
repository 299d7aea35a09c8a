package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/daemon"
)

func newDaemonCmd(g *globals) *cobra.Command {
	var (
		cfg       daemon.Config
		logSize   string
		imageSize string
		debug     bool
		upgrade   bool
	)
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run the skiff daemon (the platform itself)",
		Long: `Run the skiff daemon. It keeps its state under --root, serves the API on
--socket, and runs containers with the OCI runtime --runtime under conmon,
so containers keep running when the daemon stops or restarts.

On SIGHUP the daemon starts the binary at its path again (the same build
or a newer one put there) and hands it the API socket, the ingress and the
DNS sockets without dropping a request; it writes its process ID to
ROOT/skiff.pid. "skiff daemon --upgrade" sends that signal to the daemon
of --root and waits for the new process to serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if upgrade {
				return upgradeDaemon(cmd.Context(), g, cfg.Root, cfg.UpgradeTimeout)
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Socket = g.socket
			cfg.Version = Version
			n, err := parseBytes("log-max-size", logSize)
			if err != nil {
				return err
			}
			cfg.LogMaxSize = n
			if cfg.MaxImageSize, err = parseBytes("max-image-size", imageSize); err != nil {
				return err
			}
			if cfg.MaxImageSize < 1<<20 {
				return errdefs.Invalid("--max-image-size %s is too small: give at least 1m", imageSize)
			}
			d, err := daemon.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return d.Serve(cmd.Context())
		},
	}
	c.Flags().StringVar(&cfg.Root, "root", daemon.DefaultRoot, "state directory")
	c.Flags().StringVar(&cfg.Runtime, "runtime", daemon.DefaultRuntime, "OCI runtime: runc, crun or a path")
	c.Flags().StringVar(&logSize, "log-max-size", "10m", "size at which a container log is rotated")
	c.Flags().StringVar(&imageSize, "max-image-size", "20g", "largest image archive or build context accepted, and largest image (its layers compressed, or unpacked)")
	c.Flags().StringVar(&cfg.IngressAddr, "ingress-addr", "127.0.0.1:8080", "address of the HTTP ingress for Apps (\":80\" for every address on port 80)")
	c.Flags().StringVar(&cfg.IngressTLSAddr, "ingress-tls-addr", "", "also serve the Apps over HTTPS (HTTP/2) on this address, e.g. 127.0.0.1:8443, with certificates from skiff's local CA (ROOT/pki/ca.crt) or the Apps' own")
	c.Flags().StringVar(&cfg.MetricsAddr, "metrics-addr", "", "also serve Prometheus metrics on this TCP address (they are always at /metrics on the API socket)")
	c.Flags().StringVar(&cfg.Domain, "domain", "localhost", "domain of Apps' default hosts: NAME.DOMAIN")
	c.Flags().DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Minute, "how long a replica taken out of service waits for its requests in flight (WebSockets, long polls) before it is stopped anyway")
	c.Flags().DurationVar(&cfg.UpgradeTimeout, "upgrade-timeout", daemon.DefaultUpgradeTimeout, "how long a new daemon started on SIGHUP may take to serve before it is killed and the running one keeps serving")
	c.Flags().BoolVar(&upgrade, "upgrade", false, "hand the running daemon of --root over to the binary now at its path (sends it SIGHUP) and wait until the new process serves")
	c.Flags().StringVar(&cfg.Registry.Addr, "registry-addr", "", "serve the image store as an OCI registry on this address (e.g. 127.0.0.1:5000; plain HTTP only on loopback)")
	c.Flags().StringVar(&cfg.ACME.CA, "acme-ca", "", "get the certificates of Apps' public host names from this ACME directory URL (e.g. https://acme-v02.api.letsencrypt.org/directory); needs --ingress-tls-addr reachable on port 443")
	c.Flags().StringVar(&cfg.ACME.Email, "acme-email", "", "contact address of the ACME account")
	c.Flags().StringVar(&cfg.ACME.CARoot, "acme-ca-root", "", "PEM file of root certificates to trust for a private ACME directory")
	c.Flags().StringVar(&cfg.Registry.TLSCert, "registry-tls-cert", "", "TLS certificate file for the registry")
	c.Flags().StringVar(&cfg.Registry.TLSKey, "registry-tls-key", "", "TLS key file for the registry")
	c.Flags().BoolVar(&cfg.Registry.TLSLocal, "registry-tls-local", false, "serve the registry with a certificate from skiff's local CA (ROOT/registry/ca.crt, for clients to trust)")
	c.Flags().StringSliceVar(&cfg.Registry.AnonymousRead, "registry-anonymous-read", nil, "repository patterns anyone may pull without credentials, e.g. 'public/*' (repeatable)")
	c.Flags().BoolVar(&cfg.Registry.Delete, "registry-delete", false, "allow deleting manifests, tags and blobs through the registry")
	c.Flags().BoolVar(&cfg.Registry.Strict, "registry-strict", false, "refuse pushed manifests whose media type is not an OCI or Docker image manifest or index")
	c.Flags().DurationVar(&cfg.Registry.UploadMaxAge, "registry-upload-max-age", 24*time.Hour, "how long skiff image prune keeps an idle registry upload, and a pushed blob no manifest names yet")
	c.Flags().StringVar(&cfg.IdentityIssuer, "identity-issuer", "", "issuer URL of Apps' identity tokens (default https://API-ADDR with --api-addr, else https://skiff.DOMAIN)")
	c.Flags().DurationVar(&cfg.IdentityTokenTTL, "identity-token-ttl", daemon.DefaultIdentityTTL, "lifetime of Apps' identity tokens (renewed at 80%)")
	c.Flags().StringVar(&cfg.API.Addr, "api-addr", "", "also serve the API over TCP with TLS on this address (e.g. 0.0.0.0:7443); every call needs a token (skiff token create)")
	c.Flags().StringVar(&cfg.API.TLSCert, "api-tls-cert", "", "TLS certificate file for --api-addr (default: one from skiff's local CA, ROOT/pki/ca.crt)")
	c.Flags().StringVar(&cfg.API.TLSKey, "api-tls-key", "", "TLS key file for --api-addr")
	c.Flags().StringVar(&cfg.Policy.Profile, "security-profile", "baseline", "admission profile of containers and Apps: privileged, baseline or restricted (Apps may choose a stricter one)")
	c.Flags().StringVar(&cfg.Policy.File, "policy", "", "policy file of custom admission rules (CEL expressions), checked at start")
	c.Flags().StringSliceVar(&cfg.Policy.HostPaths, "allow-host-path", nil, "host directory that bind mounts may come from under the baseline and restricted profiles (repeatable)")
	c.Flags().BoolVar(&debug, "debug", false, "log debug messages")
	return c
}

// upgradeDaemon sends SIGHUP to the daemon of root and waits until a new
// process has taken over (ROOT/skiff.pid names it) or the old one reports
// that the handover failed.
func upgradeDaemon(ctx context.Context, g *globals, root string, timeout time.Duration) error {
	pidPath := filepath.Join(root, daemon.PIDFile)
	statusPath := filepath.Join(root, daemon.UpgradeStatusFile)
	old, err := readPID(pidPath)
	if err != nil {
		return fmt.Errorf("find the daemon of %s: %w (is it running? give its --root)", root, err)
	}
	if err := syscall.Kill(old, 0); err != nil {
		return fmt.Errorf("the daemon of %s (pid %d in %s) is not running: %w", root, old, pidPath, err)
	}
	os.Remove(statusPath)
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal the daemon (pid %d): %w", old, err)
	}
	deadline := time.Now().Add(timeout + 10*time.Second)
	for time.Now().Before(deadline) {
		if pid, err := readPID(pidPath); err == nil && pid != old && syscall.Kill(pid, 0) == nil {
			fmt.Fprintf(g.stdout, "skiff daemon upgraded: pid %d took over from pid %d\n", pid, old)
			return nil
		}
		if b, err := os.ReadFile(statusPath); err == nil && len(b) > 0 {
			return fmt.Errorf("the daemon (pid %d) keeps serving: upgrade %s", old, strings.TrimSpace(string(b)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no new daemon took over from pid %d within %s: see the daemon's log", old, timeout)
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a process ID", path)
	}
	return pid, nil
}
