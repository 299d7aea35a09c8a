package cli

import (
	"fmt"
	"skiff.dev/skiff/api"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

func newDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe app NAME",
		Short: "Show an App in detail: status, revisions, traffic, replicas, recent events",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if k := strings.ToLower(args[0]); k != "app" && k != "apps" {
				return errdefs.Invalid("describe knows apps: skiff describe app NAME")
			}
			ctx := cmd.Context()
			cl := g.client()
			a, err := cl.App(ctx, args[1])
			if err != nil {
				return err
			}
			w := g.stdout
			now := time.Now()
			fmt.Fprintf(w, "Name:         %s\n", a.Metadata.Name)
			if len(a.Metadata.Labels) > 0 {
				var ls []string
				for k, v := range a.Metadata.Labels {
					ls = append(ls, k+"="+v)
				}
				fmt.Fprintf(w, "Labels:       %s\n", strings.Join(ls, ", "))
			}
			fmt.Fprintf(w, "URL:          %s\n", a.Status.URL)
			fmt.Fprintf(w, "Image:        %s\n", a.Spec.Image)
			fmt.Fprintf(w, "Generation:   %d (observed %d)\n", a.Metadata.Generation, a.Status.ObservedGeneration)
			fmt.Fprintf(w, "Created:      %s (%s ago)\n", a.Metadata.CreationTimestamp.Local().Format(time.RFC3339), humanDuration(now.Sub(a.Metadata.CreationTimestamp)))
			fmt.Fprintf(w, "Replicas:     %d ready / %d desired\n", a.Status.Replicas.Ready, a.Status.Replicas.Desired)
			fmt.Fprintf(w, "Revisions:    latest created %s, latest ready %s\n", a.Status.LatestCreatedRevision, orDash(a.Status.LatestReadyRevision))
			fmt.Fprintf(w, "Traffic:      %s\n", trafficSummary(a.Status.Traffic))
			fmt.Fprintln(w, "\nConditions:")
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
			for _, c := range a.Status.Conditions {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, orDash(c.Reason), humanDuration(now.Sub(c.LastTransitionTime)), c.Message)
			}
			tw.Flush()
			fmt.Fprintln(w, "\nRevisions:")
			revs, err := cl.Revisions(ctx, a.Metadata.Name)
			if err != nil {
				return err
			}
			traffic := map[string]int{}
			for _, t := range a.Status.Traffic {
				traffic[t.Revision] += t.Percent
			}
			tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "  NAME\tTRAFFIC\tREADY\tREPLICAS\tIMAGE\tREASON")
			for i := len(revs) - 1; i >= 0; i-- {
				r := revs[i]
				fmt.Fprintf(tw, "  %s\t%d%%\t%s\t%d/%d\t%s\t%s\n", r.Name, traffic[r.Name], boolText(r.Status.Ready), r.Status.Replicas.Ready, r.Status.Replicas.Desired, r.Spec.Image, orDash(r.Status.Reason))
			}
			tw.Flush()
			reps, err := cl.Replicas(ctx, a.Metadata.Name)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, "\nReplicas:")
			if len(reps) == 0 {
				fmt.Fprintln(w, "  none")
			} else {
				var b strings.Builder
				sortReplicas(reps)
				if err := replicaTable.print(&b, "", false, reps); err != nil {
					return err
				}
				for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
					fmt.Fprintln(w, "  "+line)
				}
			}
			evs, err := cl.Events(ctx, client.EventsOptions{Kind: "App", Name: a.Metadata.Name, Limit: 15})
			if err != nil {
				return err
			}
			fmt.Fprintln(w, "\nEvents:")
			if len(evs) == 0 {
				fmt.Fprintln(w, "  none")
			}
			tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			for _, e := range evs {
				fmt.Fprintf(tw, "  %s ago\t%s\t%s\t%s\n", humanDuration(now.Sub(e.Time)), e.Type, e.Reason, eventMessage(e))
			}
			return tw.Flush()
		},
	}
}

// eventMessage is an event's message with its repeats, as kubectl
// describe shows them: "... (x3 over 2m)".
func eventMessage(e api.Event) string {
	if e.Count < 2 || e.FirstTime == nil {
		return e.Message
	}
	return fmt.Sprintf("%s (x%d over %s)", e.Message, e.Count, humanDuration(e.Time.Sub(*e.FirstTime)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
