package cli

import (
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/errdefs"
)

func newDaemonCmd(g *globals) *cobra.Command {
	var (
		cfg       daemon.Config
		logSize   string
		imageSize string
		debug     bool
	)
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run the skiff daemon (the platform itself)",
		Long: `Run the skiff daemon. It keeps its state under --root, serves the API on
--socket, and runs containers with the OCI runtime --runtime under conmon,
so containers keep running when the daemon stops or restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
	c.Flags().StringVar(&cfg.MetricsAddr, "metrics-addr", "", "also serve Prometheus metrics on this TCP address (they are always at /metrics on the API socket)")
	c.Flags().StringVar(&cfg.Domain, "domain", "localhost", "domain of Apps' default hosts: NAME.DOMAIN")
	c.Flags().DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Minute, "how long a replica taken out of service waits for its requests in flight (WebSockets, long polls) before it is stopped anyway")
	c.Flags().BoolVar(&debug, "debug", false, "log debug messages")
	return c
}
