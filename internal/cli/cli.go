// Package cli implements the skiff command line: `skiff daemon` runs the
// platform, every other command is a client of its API and talks to it
// only through api/client. One file per verb.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

// Version is skiff's version, set at build time with
// -ldflags "-X skiff.dev/skiff/internal/cli.Version=...".
var Version = "0.1.0-dev"

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error // printed when not nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// withCode makes a command exit with code, printing err if not nil.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// eachArg runs fn for every argument, as docker's commands over several
// objects do: a failure is printed and the rest still run; the command
// then exits 125, as every failure of skiff itself does.
func eachArg(g *globals, args []string, fn func(arg string) error) error {
	failed := false
	for _, a := range args {
		if err := fn(a); err != nil {
			fmt.Fprintln(g.stderr, "Error:", err)
			failed = true
		}
	}
	if failed {
		return withCode(125, nil)
	}
	return nil
}

type globals struct {
	socket string
	// host, token and ca reach a daemon's API over TCP instead of the
	// socket; remote is that client, made before any command runs.
	host, token, ca string
	remote          *client.Client
	stdout          io.Writer
	stderr          io.Writer
	stdin           io.Reader
}

func (g *globals) client() *client.Client {
	if g.remote != nil {
		return g.remote
	}
	return client.New(g.socket)
}

// connect makes the TCP client when --host (or SKIFF_HOST) is given.
func (g *globals) connect() error {
	if g.host == "" {
		if g.token != "" {
			return errdefs.Invalid("--token (or SKIFF_TOKEN) needs --host https://HOST:PORT: the unix socket takes no token")
		}
		return nil
	}
	if g.token == "" {
		return errdefs.Invalid("--host %s needs a token: give --token or SKIFF_TOKEN (skiff token create, on the daemon's host)", g.host)
	}
	c, err := client.NewRemote(g.host, g.token, g.ca)
	g.remote = c
	return err
}

// Main runs the command line with args and returns the process exit code.
func Main(args []string) int {
	return run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, stdin: stdin}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	return 125
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "skiff",
		Short: "skiff runs your containers, apps and their traffic on one Linux machine",
		Long: `skiff is a self-hosted container platform in one binary.

"skiff daemon" runs the platform; every other command talks to it over
its API (a unix socket, --socket or SKIFF_SOCKET).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flags are parsed at each level, so `compose -f FILE logs -f`
		// gives the file to compose and follow to logs, as docker does.
		TraverseChildren: true,
	}
	def := os.Getenv("SKIFF_SOCKET")
	if def == "" {
		def = client.DefaultSocket
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", def, "daemon API socket (env SKIFF_SOCKET)")
	root.PersistentFlags().StringVar(&g.host, "host", os.Getenv("SKIFF_HOST"), "reach the daemon's API over TCP at https://HOST:PORT instead of the socket (env SKIFF_HOST)")
	root.PersistentFlags().StringVar(&g.token, "token", os.Getenv("SKIFF_TOKEN"), "bearer token for --host (env SKIFF_TOKEN)")
	root.PersistentFlags().StringVar(&g.ca, "ca", os.Getenv("SKIFF_CA"), "CA certificate file to trust for --host, e.g. a copy of the daemon's ROOT/pki/ca.crt (env SKIFF_CA)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error { return g.connect() }
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(125, fmt.Errorf("%w\nSee '%s --help'", err, c.CommandPath()))
	})
	root.AddCommand(
		newDaemonCmd(g),
		newRegistryCmd(g),
		newRunCmd(g), newCreateCmd(g), newPsCmd(g),
		newStartCmd(g), newStopCmd(g), newRestartCmd(g), newKillCmd(g), newRmCmd(g),
		newLogsCmd(g), newExecCmd(g), newAttachCmd(g), newInspectCmd(g), newPortCmd(g), newStatsCmd(g), newWaitCmd(g),
		newImageCmd(g), newImagesCmd(g), newNetworkCmd(g), newVolumeCmd(g), newComposeCmd(g), newSecretCmd(g),
		newApplyCmd(g), newGetCmd(g), newDescribeCmd(g), newDeleteCmd(g), newDiffCmd(g),
		newRollbackCmd(g), newTrafficCmd(g), newScaleCmd(g), newEventsCmd(g),
		newVersionCmd(g), newInfoCmd(g), newCACmd(g),
		newBuilderCmd(g), newPolicyCmd(g),
		newTokenCmd(g), newAuditCmd(g),
		newKubeCmd(g), newImportCmd(g),
	)
	return root
}

// output formats.
const (
	outTable = ""
	outWide  = "wide"
	outJSON  = "json"
	outYAML  = "yaml"
)

func addOutputFlag(c *cobra.Command, p *string, allowed ...string) {
	c.Flags().StringVarP(p, "output", "o", "", "output format: "+strings.Join(allowed, "|"))
}

func checkOutput(o string, allowed ...string) error {
	if o == "" {
		return nil
	}
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return withCode(125, errdefs.Invalid("unknown output format %q: use %s", o, strings.Join(allowed, ", ")))
}

// printStructured prints v as JSON or YAML.
func printStructured(w io.Writer, format string, v any) error {
	switch format {
	case outYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	default:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
}
