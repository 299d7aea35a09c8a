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
		Long:  "Run a command in a running container; skiff exits with the command's exit code.",
		Args:  cobra.MinimumNArgs(2),
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
			code, err := g.client().Exec(cmd.Context(), args[0], req, stdin, g.stdout, g.stderr)
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
	return c
}
