package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api/errdefs"
)

func newCACmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ca",
		Short: "The daemon's local certificate authority (HTTPS ingress)",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(newCAExportCmd(g))
	return c
}

func newCAExportCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [-o FILE]",
		Short: "Write the local CA's root certificate (PEM) for clients to trust",
		Long: `Write the root certificate of the daemon's local CA, which signs the
certificates the HTTPS ingress serves (skiff daemon --ingress-tls-addr), to
stdout or FILE. Trust it with curl --cacert FILE, or on Debian for every
program: copy it to /usr/local/share/ca-certificates/skiff.crt and run
update-ca-certificates.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := g.client().Info(cmd.Context())
			if err != nil {
				return err
			}
			if info.CACert == "" {
				return errdefs.NotFound("the daemon serves no HTTPS, so it has no local CA: start it with --ingress-tls-addr (e.g. 127.0.0.1:8443)")
			}
			if out == "" {
				_, err := fmt.Fprint(g.stdout, info.CACert)
				return err
			}
			if err := os.WriteFile(out, []byte(info.CACert), 0o644); err != nil {
				return fmt.Errorf("write the CA certificate: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return c
}
