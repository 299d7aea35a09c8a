package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

func newDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete app NAME...",
		Short: "Delete Apps (their replicas drain, then stop)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if k := strings.ToLower(args[0]); k != "app" && k != "apps" {
				return errdefs.Invalid("delete knows apps: skiff delete app NAME (containers: skiff rm)")
			}
			for _, n := range args[1:] {
				if err := g.client().DeleteApp(cmd.Context(), n); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "app/%s deleted\n", n)
			}
			return nil
		},
	}
}

func newRollbackCmd(g *globals) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "rollback APP [--to REVISION]",
		Short: "Send all of an App's traffic to an older revision",
		Long: `Send all of an App's traffic to REVISION (a name like shop-00002 or just
2), or, without --to, to the newest ready revision older than the one
serving now. Traffic stays pinned there until you change spec.traffic
(skiff traffic APP latest=100, or apply a manifest).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.client().Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "app/%s rolled back: traffic %s\n", a.Metadata.Name, trafficSpec(a.Spec.Traffic))
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "revision to roll back to")
	return c
}

func trafficSpec(ts []api.TrafficTarget) string {
	var parts []string
	for _, t := range ts {
		n := t.Revision
		if t.Latest {
			n = "latest"
		}
		parts = append(parts, fmt.Sprintf("%s=%d%%", n, t.Percent))
	}
	return strings.Join(parts, ", ")
}

func newTrafficCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "traffic APP REVISION=PERCENT... ",
		Short: "Split an App's traffic between revisions",
		Long: `Split an App's traffic between revisions. REVISION is a revision name
(shop-00003), its number (3) or "latest" (the latest ready revision).
The percents must sum to 100.`,
		Example: `  skiff traffic shop shop-00003=90 latest=10
  skiff traffic shop latest=100`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			appName := args[0]
			var ts []api.TrafficTarget
			for _, a := range args[1:] {
				rev, pct, ok := strings.Cut(a, "=")
				p, err := strconv.Atoi(strings.TrimSuffix(pct, "%"))
				if !ok || err != nil {
					return errdefs.Invalid("invalid traffic %q: use REVISION=PERCENT, like %s-00002=90", a, appName)
				}
				t := api.TrafficTarget{Percent: p}
				switch {
				case rev == "latest":
					t.Latest = true
				case isDigits(rev):
					n, _ := strconv.Atoi(rev)
					t.Revision = fmt.Sprintf("%s-%05d", appName, n)
				default:
					t.Revision = rev
				}
				ts = append(ts, t)
			}
			a, err := g.client().SetTraffic(cmd.Context(), appName, ts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "app/%s traffic: %s\n", a.Metadata.Name, trafficSpec(a.Spec.Traffic))
			return nil
		},
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func newScaleCmd(g *globals) *cobra.Command {
	var lo, hi int
	c := &cobra.Command{
		Use:   "scale APP [--min N] [--max M]",
		Short: "Change an App's replica bounds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pmin, pmax *int
			if cmd.Flags().Changed("min") {
				pmin = &lo
			}
			if cmd.Flags().Changed("max") {
				pmax = &hi
			}
			if pmin == nil && pmax == nil {
				return errdefs.Invalid("give --min, --max or both")
			}
			a, err := g.client().ScaleApp(cmd.Context(), args[0], pmin, pmax)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "app/%s scaled: min %d, max %d\n", a.Metadata.Name, deref(a.Spec.Scale.Min), deref(a.Spec.Scale.Max))
			return nil
		},
	}
	c.Flags().IntVar(&lo, "min", 0, "fewest replicas (0 allows scale to zero)")
	c.Flags().IntVar(&hi, "max", 0, "most replicas")
	return c
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func newEventsCmd(g *globals) *cobra.Command {
	var since string
	var limit int
	var output string
	c := &cobra.Command{
		Use:   "events [APP]",
		Short: "Show recorded events (rollouts, scaling, failures)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			o := client.EventsOptions{Since: since, Limit: limit}
			if len(args) == 1 {
				o.Kind, o.Name = "App", args[0]
			}
			evs, err := g.client().Events(cmd.Context(), o)
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, evs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tOBJECT\tTYPE\tREASON\tMESSAGE")
			for _, e := range evs {
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.TimeOnly), strings.ToLower(e.Kind), e.Name, e.Type, e.Reason, eventMessage(e))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&since, "since", "", "only events since a time (RFC 3339) or for a duration (10m)")
	c.Flags().IntVarP(&limit, "limit", "n", 100, "at most this many (the newest)")
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}
