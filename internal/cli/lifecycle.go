package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

// eachContainer runs fn for every named container, printing the name of
// each that succeeded and the error of each that did not; the command
// fails (exit 125) if any did.
func eachContainer(ctx context.Context, g *globals, names []string, fn func(ctx context.Context, name string) error) error {
	failed := 0
	for _, n := range names {
		if err := fn(ctx, n); err != nil {
			fmt.Fprintln(g.stderr, "Error:", err)
			failed++
			continue
		}
		fmt.Fprintln(g.stdout, n)
	}
	if failed > 0 {
		return withCode(125, nil)
	}
	return nil
}

func limitsText(r api.Resources) string {
	s := ""
	if r.MemoryBytes > 0 {
		s += "mem=" + humanBytes(uint64(r.MemoryBytes)) + " "
	}
	if r.NanoCPUs > 0 {
		s += fmt.Sprintf("cpus=%g ", float64(r.NanoCPUs)/1e9)
	}
	if r.PidsLimit > 0 {
		s += fmt.Sprintf("pids=%d", r.PidsLimit)
	}
	if s == "" {
		return "-"
	}
	return s
}

func newStartCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	c := &cobra.Command{
		Use:   "start [flags] CONTAINER...",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interactive && !attach {
				return withCode(125, fmt.Errorf("start -i needs -a: use start -ai to attach stdin and output"))
			}
			if attach {
				if len(args) != 1 {
					return withCode(125, fmt.Errorf("start -a takes exactly one container"))
				}
				ctr, err := g.client().Container(cmd.Context(), args[0])
				if err != nil {
					return withCode(125, err)
				}
				return g.attachTo(cmd.Context(), ctr, true, interactive, startExitCode)
			}
			return eachContainer(cmd.Context(), g, args, g.client().Start)
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "print the container's output and exit with its exit code")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "with -a, send this command's stdin to the container (created with -i)")
	return c
}

func timeoutFlag(c *cobra.Command, p *int) {
	c.Flags().IntVarP(p, "time", "t", -1, "seconds to wait for the container to stop before killing it (default: the container's stop timeout, 10)")
}

func timeoutOf(t int) *time.Duration {
	if t < 0 {
		return nil
	}
	d := time.Duration(t) * time.Second
	return &d
}

func newStopCmd(g *globals) *cobra.Command {
	var t int
	c := &cobra.Command{
		Use:   "stop [flags] CONTAINER...",
		Short: "Stop running containers (stop signal, then SIGKILL after a grace period)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), g, args, func(ctx context.Context, n string) error {
				return g.client().Stop(ctx, n, timeoutOf(t))
			})
		},
	}
	timeoutFlag(c, &t)
	return c
}

func newRestartCmd(g *globals) *cobra.Command {
	var t int
	c := &cobra.Command{
		Use:   "restart [flags] CONTAINER...",
		Short: "Restart containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), g, args, func(ctx context.Context, n string) error {
				return g.client().Restart(ctx, n, timeoutOf(t))
			})
		},
	}
	timeoutFlag(c, &t)
	return c
}

func newKillCmd(g *globals) *cobra.Command {
	var sig string
	c := &cobra.Command{
		Use:   "kill [flags] CONTAINER...",
		Short: "Send a signal to running containers (default SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), g, args, func(ctx context.Context, n string) error {
				return g.client().Kill(ctx, n, sig)
			})
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "SIGKILL", "signal to send: a name (SIGHUP, TERM) or a number")
	return c
}

func newRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm [flags] CONTAINER...",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), g, args, func(ctx context.Context, n string) error {
				return g.client().Remove(ctx, n, force)
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill and remove running containers")
	return c
}

func newWaitCmd(g *globals) *cobra.Command {
	var condition string
	return &cobra.Command{
		Use:   "wait CONTAINER...",
		Short: "Wait for containers to stop and print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				res, err := g.client().Wait(cmd.Context(), n, condition)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, res.ExitCode)
			}
			return nil
		},
	}
}

func newAttachCmd(g *globals) *cobra.Command {
	var noStdin bool
	c := &cobra.Command{
		Use:   "attach [flags] CONTAINER",
		Short: "Attach to a running container's output, and its stdin if it was created with -i",
		Long: `Print a running container's output from now on until it exits, then exit
with its exit code. For a container created with -i, this command's stdin
goes to it, and its end (^D on a terminal) closes the container's stdin.
^C stops attaching and leaves the container running (with -i, its stdin
then ends); on a container's terminal (-it), ^P ^Q detaches and keeps it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctr, err := g.client().Container(cmd.Context(), args[0])
			if err != nil {
				return withCode(125, err)
			}
			return g.attachTo(cmd.Context(), ctr, false, ctr.Config.OpenStdin && !noStdin, func(error) int { return 1 })
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "do not send this command's stdin to the container")
	return c
}

// attachTo streams ctr's output (starting it first with start) and, with
// withStdin, sends this command's stdin; on a container's terminal it
// follows this terminal and ^P ^Q detaches. It returns the container's
// exit code as the command's, and errors with the code errCode gives.
func (g *globals) attachTo(ctx context.Context, ctr api.Container, start, withStdin bool, errCode func(error) int) error {
	var stdin io.Reader
	if withStdin {
		stdin = g.stdin
	}
	if ctr.Config.Tty {
		restore, err := g.followTerminal(ctx, ctr.ID, withStdin, !start)
		if err != nil {
			return withCode(125, err)
		}
		defer restore()
		if withStdin {
			stdin = &detachReader{r: stdin}
		}
	}
	res, err := g.client().Attach(ctx, ctr.Name, start, stdin, g.stdout, g.stderr)
	if errors.Is(err, client.ErrDetached) {
		g.saidDetached(ctr.Name)
		return nil
	}
	if err != nil {
		return withCode(errCode(err), err)
	}
	if res.ExitCode != 0 {
		return withCode(res.ExitCode, nil)
	}
	return nil
}
