package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

func newTokenCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Manage the bearer tokens of the API over TCP (on the daemon's host)",
		Long: `Manage the bearer tokens the daemon's API over TCP (skiff daemon --api-addr)
accepts. Tokens are managed only over the unix socket, by root or the skiff
group on the daemon's host. Roles: viewer reads; deployer also applies, rolls
back, scales and deletes the Apps matching its --app pattern; admin may do
everything.`,
	}
	c.AddCommand(newTokenCreateCmd(g), newTokenLsCmd(g), newTokenRevokeCmd(g))
	return c
}

// socketClient refuses token management over TCP.
func (g *globals) socketClient() (*client.Client, error) {
	if g.remote != nil {
		return nil, errdefs.Invalid("tokens are managed only on the daemon's unix socket: run skiff token on the daemon's host without --host")
	}
	return g.client(), nil
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var req api.TokenCreateRequest
	c := &cobra.Command{
		Use:   "create --role admin|deployer|viewer [--app PATTERN] [--expires DURATION] [--name NAME]",
		Short: "Make a token and print it (shown this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.socketClient()
			if err != nil {
				return err
			}
			out, err := cl.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, out.Secret)
			fmt.Fprintf(g.stderr, "token %s (%s) made: it is shown only this once, keep it secret\n", out.Name, out.Role)
			return nil
		},
	}
	c.Flags().StringVar(&req.Role, "role", "", "admin, deployer or viewer")
	c.Flags().StringVar(&req.App, "app", "", "deployer only: pattern of the App names it may change (shell glob, e.g. 'shop-*')")
	c.Flags().StringVar(&req.Expires, "expires", "", "lifetime, e.g. 24h or 720h (default: never expires)")
	c.Flags().StringVar(&req.Name, "name", "", "name shown in token ls and the audit events (default: ROLE-random)")
	return c
}

func newTokenLsCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "ls",
		Short: "List tokens: name, role, App pattern, expiry, last use (never the token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			cl, err := g.socketClient()
			if err != nil {
				return err
			}
			toks, err := cl.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, toks)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tAPPS\tEXPIRES\tLAST USED")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, orDash(t.App), tokenTime(t.Expires, "never"), tokenTime(t.LastUsed, "never"))
			}
			return tw.Flush()
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func tokenTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Local().Format(time.RFC3339)
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: it is refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.socketClient()
			if err != nil {
				return err
			}
			if err := cl.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "token %s revoked\n", args[0])
			return nil
		},
	}
}

func newAuditCmd(g *globals) *cobra.Command {
	var since, who string
	var limit int
	c := &cobra.Command{
		Use:   "audit",
		Short: "Show the API's audit events: mutating calls and authentication failures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			evs, err := g.client().Events(cmd.Context(), client.EventsOptions{Kind: api.EventKindAPI, Name: who, Since: since, Limit: limit})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tWHO\tREASON\tCALL")
			for _, e := range evs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.RFC3339), e.Name, e.Reason, eventMessage(e))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&since, "since", "", "only events since a time (RFC 3339) or for a duration (10m)")
	c.Flags().StringVar(&who, "who", "", "only calls by this token name (or \"socket\", \"-\" for failed authentications)")
	c.Flags().IntVarP(&limit, "limit", "n", 100, "at most this many (the newest)")
	return c
}
