package cli

import (
	"io"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
)

func newExecCmd(g *globals) *cobra.Command {
	var (
		req         api.ExecRequest
		interactive bool
	)
	c := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Long: `Run a command in a running container; skiff exits with the command's exit code.

With -it the command gets a terminal and this terminal's keys, as
"docker exec -it" gives: skiff exec -it web sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := expandEnv(req.Env)
			if err != nil {
				return withCode(125, err)
			}
			req.Env = env
			req.Cmd = args[1:]
			var stdin io.Reader
			if interactive {
				stdin = g.stdin
			}
			var code int
			if req.Tty {
				size, restore, err := g.useTerminal(interactive)
				if err != nil {
					return withCode(125, err)
				}
				defer restore()
				req.ConsoleSize = size
			}
			if req.Tty && interactive {
				resize := make(chan api.ConsoleSize, 1)
				stop := g.watchTerminalSize(func(size api.ConsoleSize) {
					select {
					case resize <- size:
					default:
					}
				})
				defer stop()
				code, err = g.client().ExecTerminal(cmd.Context(), args[0], req, stdin, g.stdout, resize)
			} else {
				code, err = g.client().Exec(cmd.Context(), args[0], req, stdin, g.stdout, g.stderr)
			}
			if err != nil {
				return withCode(startExitCode(err), err)
			}
			if code != 0 {
				return withCode(code, nil)
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().StringArrayVarP(&req.Env, "env", "e", nil, "set an environment variable KEY=VALUE")
	c.Flags().StringVarP(&req.WorkingDir, "workdir", "w", "", "working directory inside the container")
	c.Flags().StringVarP(&req.User, "user", "u", "", "user to run as")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "send this command's stdin to the process")
	c.Flags().BoolVarP(&req.Tty, "tty", "t", false, "give the process a terminal (with -i, this terminal's keys go to it)")
	return c
}
