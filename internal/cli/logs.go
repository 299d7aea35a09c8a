package cli

import (
	"bufio"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		opts       client.LogsOptions
		tail       string
		timestamps bool
	)
	c := &cobra.Command{
		Use:   "logs [flags] CONTAINER|APP",
		Short: "Print a container's or an App's output",
		Long:  "Print a container's output, or the output of all an App's replicas with each line prefixed by the replica's name: stdout to stdout, stderr to stderr.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tail = -1
			if tail != "all" {
				if _, err := fmt.Sscanf(tail, "%d", &opts.Tail); err != nil || opts.Tail < 0 {
					return withCode(125, fmt.Errorf("invalid --tail %q: use a number of lines or all", tail))
				}
			}
			var mu sync.Mutex
			// Entries are written through buffers, flushed often enough
			// for a follower to see output as it comes.
			stdout, stderr := bufio.NewWriterSize(g.stdout, 64<<10), bufio.NewWriterSize(g.stderr, 64<<10)
			flush := func() {
				mu.Lock()
				defer mu.Unlock()
				stdout.Flush()
				stderr.Flush()
			}
			defer flush()
			stopFlushing := make(chan struct{})
			defer close(stopFlushing)
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-tick.C:
						flush()
					case <-stopFlushing:
						return
					}
				}
			}()
			printer := func(prefix string) func(e api.LogEntry) error {
				return func(e api.LogEntry) error {
					mu.Lock()
					defer mu.Unlock()
					w := stdout
					if e.Stream == "stderr" {
						w = stderr
					}
					w.WriteString(prefix)
					if timestamps {
						w.WriteString(e.Time.Format(time.RFC3339Nano))
						w.WriteByte(' ')
					}
					_, err := w.WriteString(e.Line)
					if !e.Partial && err == nil {
						err = w.WriteByte('\n')
					}
					return err // a failed flush stays the writer's error
				}
			}
			cl := g.client()
			err := cl.Logs(cmd.Context(), args[0], opts, printer(""))
			if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
			// Not a container: an App's replicas, each line prefixed.
			reps, aerr := cl.Replicas(cmd.Context(), args[0])
			if aerr != nil {
				return errdefs.NotFound("no container or app named %q: see skiff ps -a and skiff get apps", args[0])
			}
			var wg sync.WaitGroup
			errs := make(chan error, len(reps))
			for _, r := range reps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := cl.Logs(cmd.Context(), r.ContainerID, opts, printer("["+r.Name+"] ")); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			return <-errs
		},
	}
	c.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new output until the container stops")
	c.Flags().StringVar(&opts.Since, "since", "", "only output since a time (RFC 3339) or for a duration (10m)")
	c.Flags().StringVar(&opts.Until, "until", "", "only output before a time (RFC 3339) or a duration ago (10m)")
	c.Flags().StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end")
	c.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	return c
}
