package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
)

func newStatsCmd(g *globals) *cobra.Command {
	var noStream bool
	var output string
	c := &cobra.Command{
		Use:   "stats [flags] [CONTAINER...]",
		Short: "Show containers' CPU, memory and process counts",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			ctx := cmd.Context()
			prev, err := sampleStats(ctx, g, args)
			if err != nil {
				return err
			}
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				cur, err := sampleStats(ctx, g, args)
				if err != nil {
					return err
				}
				rows := withCPUPercent(prev, cur)
				if output != "" {
					if err := printStructured(g.stdout, output, rows); err != nil {
						return err
					}
				} else {
					if !noStream {
						fmt.Fprint(g.stdout, "\033[2J\033[H")
					}
					printStats(g.stdout, rows)
				}
				if noStream {
					return nil
				}
				prev = cur
			}
		},
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func sampleStats(ctx context.Context, g *globals, names []string) ([]api.ContainerStats, error) {
	cl := g.client()
	if len(names) == 0 {
		cs, err := cl.Containers(ctx, false)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			names = append(names, c.ID)
		}
	}
	var out []api.ContainerStats
	for _, n := range names {
		s, err := cl.Stats(ctx, n)
		if err != nil {
			if len(names) > 0 {
				continue // it may have stopped meanwhile
			}
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// withCPUPercent computes CPU use between two samples, as a percentage of
// one CPU (200% is two CPUs busy), as docker stats does.
func withCPUPercent(prev, cur []api.ContainerStats) []api.ContainerStats {
	before := map[string]api.ContainerStats{}
	for _, s := range prev {
		before[s.ID] = s
	}
	for i, s := range cur {
		if p, ok := before[s.ID]; ok && s.Time.After(p.Time) && s.CPUUsageNanos >= p.CPUUsageNanos {
			cur[i].CPUPercent = float64(s.CPUUsageNanos-p.CPUUsageNanos) / float64(s.Time.Sub(p.Time).Nanoseconds()) * 100
		}
	}
	return cur
}

func printStats(w io.Writer, rows []api.ContainerStats) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tPIDS")
	for _, s := range rows {
		limit, pct := "unlimited", "-"
		if s.MemoryLimitBytes > 0 {
			limit = humanBytes(s.MemoryLimitBytes)
			pct = fmt.Sprintf("%.2f%%", float64(s.MemoryUsageBytes)/float64(s.MemoryLimitBytes)*100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%s\t%d\n", shortID(s.ID), s.Name, s.CPUPercent, humanBytes(s.MemoryUsageBytes), limit, pct, s.Pids)
	}
	tw.Flush()
}
