package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/errdefs"
)

func newGetCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "get apps|revisions|replicas [NAME]",
		Short: "List Apps, revisions or replicas",
		Long: `List Apps (get apps [NAME]), an App's revisions (get revisions APP, or
all Apps' without APP) or replicas (get replicas [APP]).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outWide, outJSON, outYAML); err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			ctx := cmd.Context()
			switch strings.ToLower(args[0]) {
			case "app", "apps":
				return getApps(ctx, g, name, output)
			case "revision", "revisions", "rev", "revs":
				return getRevisions(ctx, g, name, output)
			case "replica", "replicas":
				return getReplicas(ctx, g, name, output)
			}
			return withCode(1, errdefs.Invalid("unknown resource %q: use apps, revisions or replicas", args[0]))
		},
	}
	addOutputFlag(c, &output, outWide, outJSON, outYAML)
	return c
}

func condition(a api.App, t api.ConditionType) api.Condition {
	for _, c := range a.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return api.Condition{Status: api.ConditionUnknown}
}

func readyText(a api.App) string {
	c := condition(a, api.ConditionReady)
	if c.Status == api.ConditionTrue {
		return "True"
	}
	if c.Reason != "" {
		return string(c.Status) + " (" + c.Reason + ")"
	}
	return string(c.Status)
}

func trafficSummary(ts []api.TrafficTarget) string {
	var parts []string
	for _, t := range ts {
		s := fmt.Sprintf("%s=%d%%", t.Revision, t.Percent)
		if t.Tag != "" {
			s += "(" + t.Tag + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func getApps(ctx context.Context, g *globals, name, output string) error {
	var apps []api.App
	if name != "" {
		a, err := g.client().App(ctx, name)
		if err != nil {
			return err
		}
		apps = []api.App{a}
	} else {
		var err error
		if apps, err = g.client().Apps(ctx); err != nil {
			return err
		}
	}
	if output == outJSON || output == outYAML {
		if name != "" {
			return printStructured(g.stdout, output, apps[0])
		}
		return printStructured(g.stdout, output, apps)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
	if output == outWide {
		fmt.Fprintln(tw, "NAME\tURL\tREADY\tREPLICAS\tLATEST\tTRAFFIC\tIMAGE\tGENERATION\tAGE")
	} else {
		fmt.Fprintln(tw, "NAME\tURL\tREADY\tREPLICAS\tLATEST\tTRAFFIC\tAGE")
	}
	for _, a := range apps {
		reps := fmt.Sprintf("%d/%d", a.Status.Replicas.Ready, a.Status.Replicas.Desired)
		age := humanDuration(now.Sub(a.Metadata.CreationTimestamp))
		if output == outWide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Metadata.Name, a.Status.URL, readyText(a), reps, a.Status.LatestCreatedRevision, trafficSummary(a.Status.Traffic), a.Spec.Image, a.Metadata.Generation, age)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Metadata.Name, a.Status.URL, readyText(a), reps, a.Status.LatestCreatedRevision, trafficSummary(a.Status.Traffic), age)
	}
	return tw.Flush()
}

func getRevisions(ctx context.Context, g *globals, name, output string) error {
	var names []string
	if name != "" {
		names = []string{name}
	} else {
		apps, err := g.client().Apps(ctx)
		if err != nil {
			return err
		}
		for _, a := range apps {
			names = append(names, a.Metadata.Name)
		}
	}
	var all []api.Revision
	traffic := map[string]int{}
	for _, n := range names {
		revs, err := g.client().Revisions(ctx, n)
		if err != nil {
			return err
		}
		all = append(all, revs...)
		if a, err := g.client().App(ctx, n); err == nil {
			for _, t := range a.Status.Traffic {
				traffic[t.Revision] += t.Percent
			}
		}
	}
	if output == outJSON || output == outYAML {
		return printStructured(g.stdout, output, all)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprint(tw, "NAME\tAPP\tTRAFFIC\tREADY\tREPLICAS\tIMAGE\tAGE")
	if output == outWide {
		fmt.Fprint(tw, "\tIMAGE ID\tREASON")
	}
	fmt.Fprintln(tw)
	for _, r := range all {
		ready := "False"
		if r.Status.Ready {
			ready = "True"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%%\t%s\t%d/%d\t%s\t%s", r.Name, r.App, traffic[r.Name], ready, r.Status.Replicas.Ready, r.Status.Replicas.Desired, r.Spec.Image, humanDuration(now.Sub(r.Created)))
		if output == outWide {
			fmt.Fprintf(tw, "\t%s\t%s", shortID(r.Status.ImageDigest), r.Status.Reason)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func getReplicas(ctx context.Context, g *globals, app, output string) error {
	reps, err := g.client().Replicas(ctx, app)
	if err != nil {
		return err
	}
	if output == outJSON || output == outYAML {
		return printStructured(g.stdout, output, reps)
	}
	printReplicas(g.stdout, reps, output == outWide)
	return nil
}

func printReplicas(w io.Writer, reps []api.Replica, wide bool) {
	sort.Slice(reps, func(i, j int) bool { return reps[i].Name < reps[j].Name })
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprint(tw, "NAME\tREVISION\tREADY\tSTATE\tRESTARTS\tIP\tAGE")
	if wide {
		fmt.Fprint(tw, "\tCONTAINER ID")
	}
	fmt.Fprintln(tw)
	for _, r := range reps {
		ready := "False"
		if r.Ready {
			ready = "True"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s", r.Name, r.Revision, ready, r.State, r.Restarts, r.IP, humanDuration(now.Sub(r.Created)))
		if wide {
			fmt.Fprintf(tw, "\t%s", shortID(r.ContainerID))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
