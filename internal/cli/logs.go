package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		opts       client.LogsOptions
		tail       string
		timestamps bool
	)
	c := &cobra.Command{
		Use:   "logs [flags] CONTAINER",
		Short: "Print a container's output",
		Long:  "Print a container's output: stdout to stdout, stderr to stderr.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tail = -1
			if tail != "all" {
				if _, err := fmt.Sscanf(tail, "%d", &opts.Tail); err != nil || opts.Tail < 0 {
					return withCode(125, fmt.Errorf("invalid --tail %q: use a number of lines or all", tail))
				}
			}
			return g.client().Logs(cmd.Context(), args[0], opts, func(e api.LogEntry) error {
				w := g.stdout
				if e.Stream == "stderr" {
					w = g.stderr
				}
				if timestamps {
					fmt.Fprint(w, e.Time.Format(time.RFC3339Nano), " ")
				}
				nl := "\n"
				if e.Partial {
					nl = ""
				}
				_, err := fmt.Fprint(w, e.Line, nl)
				return err
			})
		},
	}
	c.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new output until the container stops")
	c.Flags().StringVar(&opts.Since, "since", "", "only output since a time (RFC 3339) or for a duration (10m)")
	c.Flags().StringVar(&opts.Until, "until", "", "only output before a time (RFC 3339) or a duration ago (10m)")
	c.Flags().StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end")
	c.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	return c
}
