package cli

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

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

// watchTerminalSize calls resize with this terminal's size each time the
// window changes (SIGWINCH), until stop.
func (g *globals) watchTerminalSize(resize func(api.ConsoleSize)) (stop func()) {
	out, ok := g.stdout.(*os.File)
	if !ok {
		return func() {}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
					resize(api.ConsoleSize{Height: uint(h), Width: uint(w)})
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// useTerminal prepares this terminal for a process with a terminal in
// the container: size is this one's (nil if stdout is not a terminal),
// and with interactive it is put in raw mode so every key goes to the
// process; restore undoes that. With interactive, stdin must be a
// terminal.
func (g *globals) useTerminal(interactive bool) (size *api.ConsoleSize, restore func(), err error) {
	restore = func() {}
	if out, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
		if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
			size = &api.ConsoleSize{Height: uint(h), Width: uint(w)}
		}
	}
	if !interactive {
		return size, restore, nil
	}
	in, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, nil, errors.New("-t with -i needs a terminal, and the input is not one: drop -t to pipe input in")
	}
	state, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, nil, err
	}
	return size, func() { term.Restore(int(in.Fd()), state) }, nil
}
