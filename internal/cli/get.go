package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
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
			return errdefs.Invalid("unknown resource %q: use apps, revisions or replicas", args[0])
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
	if name != "" && (output == outJSON || output == outYAML) {
		return printStructured(g.stdout, output, apps[0])
	}
	return appTable.print(g.stdout, output, false, apps)
}

var appTable = table[api.App]{
	header:     "NAME\tURL\tREADY\tREPLICAS\tLATEST\tTRAFFIC\tAGE",
	wideHeader: "NAME\tURL\tREADY\tREPLICAS\tLATEST\tTRAFFIC\tIMAGE\tGENERATION\tAGE",
	id:         func(a api.App) string { return a.Metadata.Name },
	rows: func(w io.Writer, a api.App, wide bool, now time.Time) {
		reps := fmt.Sprintf("%d/%d", a.Status.Replicas.Ready, a.Status.Replicas.Desired)
		age := humanDuration(now.Sub(a.Metadata.CreationTimestamp))
		if wide {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Metadata.Name, a.Status.URL, readyText(a), reps, a.Status.LatestCreatedRevision, trafficSummary(a.Status.Traffic), a.Spec.Image, a.Metadata.Generation, age)
			return
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Metadata.Name, a.Status.URL, readyText(a), reps, a.Status.LatestCreatedRevision, trafficSummary(a.Status.Traffic), age)
	},
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
	t := table[api.Revision]{
		header:     "NAME\tAPP\tTRAFFIC\tREADY\tREPLICAS\tIMAGE\tAGE",
		wideHeader: "NAME\tAPP\tTRAFFIC\tREADY\tREPLICAS\tIMAGE\tAGE\tIMAGE ID\tREASON",
		id:         func(r api.Revision) string { return r.Name },
		rows: func(w io.Writer, r api.Revision, wide bool, now time.Time) {
			fmt.Fprintf(w, "%s\t%s\t%d%%\t%s\t%d/%d\t%s\t%s", r.Name, r.App, traffic[r.Name], boolText(r.Status.Ready), r.Status.Replicas.Ready, r.Status.Replicas.Desired, r.Spec.Image, humanDuration(now.Sub(r.Created)))
			if wide {
				fmt.Fprintf(w, "\t%s\t%s", shortID(r.Status.ImageDigest), r.Status.Reason)
			}
			fmt.Fprintln(w)
		},
	}
	return t.print(g.stdout, output, false, all)
}

func getReplicas(ctx context.Context, g *globals, app, output string) error {
	reps, err := g.client().Replicas(ctx, app)
	if err != nil {
		return err
	}
	sortReplicas(reps)
	return replicaTable.print(g.stdout, output, false, reps)
}

func sortReplicas(reps []api.Replica) {
	slices.SortFunc(reps, func(a, b api.Replica) int { return strings.Compare(a.Name, b.Name) })
}

// replicaTable lists replicas (sorted first by sortReplicas).
var replicaTable = table[api.Replica]{
	header:     "NAME\tREVISION\tREADY\tSTATE\tRESTARTS\tIP\tAGE",
	wideHeader: "NAME\tREVISION\tREADY\tSTATE\tRESTARTS\tIP\tAGE\tCONTAINER ID",
	id:         func(r api.Replica) string { return r.Name },
	rows: func(w io.Writer, r api.Replica, wide bool, now time.Time) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s", r.Name, r.Revision, boolText(r.Ready), r.State, r.Restarts, r.IP, humanDuration(now.Sub(r.Created)))
		if wide {
			fmt.Fprintf(w, "\t%s", shortID(r.ContainerID))
		}
		fmt.Fprintln(w)
	},
}

// boolText is a condition's status: True or False.
func boolText(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
