package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/buildcontext"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/compose"
)

// composeFlags are the global flags of `skiff compose`.
type composeFlags struct {
	files    []string
	project  string
	profiles []string
	envFiles []string
	dir      string
	strict   bool
}

func newComposeCmd(g *globals) *cobra.Command {
	f := &composeFlags{}
	c := &cobra.Command{
		Use:   "compose",
		Short: "Run docker-compose.yml projects: up, down, ps, logs, config, ...",
		Long: `Run a Compose project (compose.yaml or docker-compose.yml) as docker
compose does: containers PROJECT-SERVICE-N on the network PROJECT_default,
named volumes PROJECT_NAME, all labelled com.docker.compose.project=PROJECT.

Keys skiff does not honour are listed in one warning (an error with
--strict). See docs/compose.md for the supported keys.`,
		Example: `  skiff compose up -d --wait
  skiff compose -f compose.yaml -f compose.prod.yaml config
  skiff compose logs -f web
  skiff compose down -v`,
	}
	pf := c.Flags()
	pf.StringArrayVarP(&f.files, "file", "f", nil, "compose file (repeatable, merged in order)")
	pf.StringVarP(&f.project, "project-name", "p", "", "project name (default: the directory's name)")
	pf.StringArrayVar(&f.profiles, "profile", nil, "enable the services of a profile (repeatable)")
	pf.StringArrayVar(&f.envFiles, "env-file", nil, "interpolate from this file instead of .env (repeatable)")
	pf.StringVar(&f.dir, "project-directory", "", "project directory (default: the first file's)")
	pf.BoolVar(&f.strict, "strict", false, "refuse a project with keys skiff does not support")
	c.AddCommand(newComposeConfigCmd(g, f), newComposeUpCmd(g, f), newComposeDownCmd(g, f),
		newComposePsCmd(g, f), newComposeLogsCmd(g, f), newComposeStopCmd(g, f), newComposeStartCmd(g, f),
		newComposeRestartCmd(g, f), newComposeExecCmd(g, f), newComposeRunCmd(g, f), newComposeBuildCmd(g, f),
		newComposeImagesCmd(g, f), newComposePullCmd(g, f), newComposePushCmd(g, f),
		newComposeConvertCmd(g, f), newComposeTopCmd(g, f))
	return c
}

// load reads the project; with check, it prints the unsupported keys in
// one warning, or refuses them with --strict.
func (f *composeFlags) load(ctx context.Context, g *globals, check bool) (*types.Project, error) {
	if f.project == "" {
		f.project = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	if len(f.profiles) == 0 && os.Getenv("COMPOSE_PROFILES") != "" {
		f.profiles = strings.Split(os.Getenv("COMPOSE_PROFILES"), ",")
	}
	p, err := compose.Load(ctx, compose.LoadOptions{Files: f.files, ProjectName: f.project,
		Profiles: f.profiles, EnvFiles: f.envFiles, WorkDir: f.dir})
	if err != nil {
		return nil, err
	}
	if !check {
		return p, nil
	}
	return p, f.checkKeys(g, p, nil)
}

// checkKeys prints in one warning the keys of p skiff does not support,
// and those of the services apps (run as Apps) an App does not carry; or
// refuses them with --strict.
func (f *composeFlags) checkKeys(g *globals, p *types.Project, apps []string) error {
	if issues := append(compose.Unsupported(p), compose.AppIssues(p, apps)...); len(issues) > 0 {
		var b strings.Builder
		for _, i := range issues {
			b.WriteString("\n  " + i.String())
		}
		if f.strict {
			return errdefs.Invalid("keys skiff does not support (remove them, or leave out --strict to run without them):%s", b.String())
		}
		fmt.Fprintf(g.stderr, "WARNING: keys skiff does not support are ignored:%s\n", b.String())
	}
	return nil
}

func (g *globals) engine() *compose.Engine {
	return &compose.Engine{C: g.client(), Progress: g.stderr}
}

func newComposeConfigCmd(g *globals, f *composeFlags) *cobra.Command {
	var services, quiet bool
	c := &cobra.Command{
		Use:   "config",
		Short: "Print the resolved project, as docker compose config does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				return nil
			case services:
				for _, s := range p.ServiceNames() {
					fmt.Fprintln(g.stdout, s)
				}
				return nil
			}
			b, err := compose.Config(p)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
	c.Flags().BoolVar(&services, "services", false, "print only the service names")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only check the files")
	return c
}

// builder builds a service's image through the daemon's builder.
func (g *globals) builder(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	b := s.Build
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	opts := client.BuildOptions{Tags: []string{compose.ImageName(p, s)}, Dockerfile: dockerfile, Target: b.Target,
		BuildArgs: map[string]string{}}
	for k, v := range b.Args {
		if v != nil {
			opts.BuildArgs[k] = *v
		}
	}
	opts.Progress = func(line string) { fmt.Fprintf(g.stderr, "%s  %s\n", s.Name, line) }
	tr, err := buildcontext.Tar(b.Context, dockerfile)
	if err != nil {
		return err
	}
	defer tr.Close()
	if _, err := g.client().BuildImage(ctx, tr, opts); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, " ✔ Image %s  Built\n", opts.Tags[0])
	return nil
}

func newComposeBuildCmd(g *globals, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build the images of services with a build section",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				names = p.ServicesWithBuild()
			}
			for _, n := range names {
				s, err := p.GetService(n)
				if err != nil {
					return errdefs.NotFound("%v", err)
				}
				if s.Build == nil {
					continue
				}
				if err := g.builder(cmd.Context(), p, s); err != nil {
					return fmt.Errorf("build service %s: %w", n, err)
				}
			}
			return nil
		},
	}
}

func newComposeUpCmd(g *globals, f *composeFlags) *cobra.Command {
	var (
		o       compose.UpOptions
		detach  bool
		timeout int
	)
	c := &cobra.Command{
		Use:   "up [flags] [SERVICE...]",
		Short: "Create and start the project's containers (only what changed)",
		Long: `Create the networks and containers of the project, or of the SERVICEs
and what they depend on, in dependency order, waiting for each depends_on
condition (service_started, service_healthy, service_completed_successfully).
On a running project only the services whose configuration or image
changed are recreated.

Services marked x-skiff: {app: true} (every service with --apps) run as
Apps (see skiff compose convert) on the project's networks, applied as
skiff apply does: a changed service rolls out a new revision. A service
that depends on an App waits until it is ready. down deletes them.

Without -d, up then prints the services' logs until interrupted, and stops
them. With --wait, up returns once every service runs and is healthy, or
fails naming the one that is not.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			apps, err := compose.AppServices(p, o.Apps)
			if err != nil {
				return err
			}
			if err := f.checkKeys(g, p, apps); err != nil {
				return err
			}
			o.Services = args
			o.Builder = g.builder
			o.WaitTimeout = time.Duration(timeout) * time.Second
			e := g.engine()
			if err := e.Up(cmd.Context(), p, o); err != nil {
				return err
			}
			if detach || o.Wait {
				return nil
			}
			err = followLogs(cmd.Context(), g, e, p, args, client.LogsOptions{Follow: true, Tail: -1})
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if serr := e.Stop(sctx, p, args, nil); serr != nil {
				return serr
			}
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	c.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background")
	c.Flags().BoolVar(&o.Apps, "apps", false, "run every service as an App, not only those marked x-skiff: {app: true}")
	c.Flags().BoolVar(&o.Build, "build", false, "build images before starting")
	c.Flags().BoolVar(&o.ForceRecreate, "force-recreate", false, "recreate containers even if unchanged")
	c.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", false, "remove containers of services no longer in the project")
	c.Flags().BoolVar(&o.Wait, "wait", false, "wait until the services run and are healthy (implies -d)")
	c.Flags().IntVar(&timeout, "wait-timeout", 0, "give up waiting after this many seconds (0: no limit)")
	return c
}

func newComposeDownCmd(g *globals, f *composeFlags) *cobra.Command {
	var o compose.DownOptions
	c := &cobra.Command{
		Use:   "down [flags]",
		Short: "Stop and remove the project's containers and networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			return g.engine().Down(cmd.Context(), p, o)
		},
	}
	c.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "also remove the project's named volumes")
	c.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", false, "also remove containers of services no longer in the project")
	return c
}

func newComposePsCmd(g *globals, f *composeFlags) *cobra.Command {
	var all, quiet bool
	c := &cobra.Command{
		Use:   "ps [flags] [SERVICE...]",
		Short: "List the project's containers and Apps",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			cs, err := g.engine().Containers(cmd.Context(), p.Name, false)
			if err != nil {
				return err
			}
			want := map[string]bool{}
			for _, a := range args {
				want[a] = true
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(tw, "NAME\tIMAGE\tSERVICE\tCREATED\tSTATUS\tPORTS")
			}
			now := time.Now()
			for _, c := range cs {
				svc := c.Config.Labels[compose.LabelService]
				if (len(want) > 0 && !want[svc]) || (!all && c.State.Status == api.StatusExited) {
					continue
				}
				if quiet {
					fmt.Fprintln(tw, c.ID)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Config.Image, svc, ago(c.Created, now),
					statusText(c.State, now), portsText(c))
			}
			if err := printComposeApps(cmd.Context(), g, tw, p.Name, want, quiet); err != nil {
				return err
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "also list stopped containers")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the IDs")
	return c
}

// followLogs prints the services' log lines prefixed with the container
// name, coloured on a terminal.
func followLogs(ctx context.Context, g *globals, e *compose.Engine, p *types.Project, services []string, opts client.LogsOptions) error {
	colour := false
	if fd, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
		colour = true
	}
	width := 0
	for _, s := range p.Services {
		if n := len(compose.ContainerName(p, s, 1)); n > width {
			width = n
		}
	}
	colours := map[string]int{}
	return e.Logs(ctx, p, services, opts, func(l compose.LogLine) error {
		prefix := fmt.Sprintf("%-*s | ", width, l.Container)
		if colour {
			c, ok := colours[l.Service]
			if !ok {
				c = 31 + len(colours)%6
				colours[l.Service] = c
			}
			prefix = fmt.Sprintf("\x1b[%dm%s\x1b[0m", c, prefix)
		}
		_, err := io.WriteString(g.stdout, prefix+l.Entry.Line+"\n")
		return err
	})
}

func newComposeLogsCmd(g *globals, f *composeFlags) *cobra.Command {
	var (
		follow bool
		tail   string
	)
	c := &cobra.Command{
		Use:   "logs [flags] [SERVICE...]",
		Short: "Print the services' output, prefixed with the container name",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			opts := client.LogsOptions{Follow: follow, Tail: -1}
			if tail != "all" {
				if _, err := fmt.Sscan(tail, &opts.Tail); err != nil || opts.Tail < 0 {
					return withCode(125, errdefs.Invalid("--tail %q: give a number of lines or all", tail))
				}
			}
			err = followLogs(cmd.Context(), g, g.engine(), p, args, opts)
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "follow new output")
	c.Flags().StringVarP(&tail, "tail", "n", "all", "lines to show from the end of each container's log")
	return c
}

func stopTimeout(secs int) *time.Duration {
	if secs < 0 {
		return nil
	}
	d := time.Duration(secs) * time.Second
	return &d
}

func newComposeStopCmd(g *globals, f *composeFlags) *cobra.Command {
	var secs int
	c := &cobra.Command{
		Use:   "stop [SERVICE...]",
		Short: "Stop the services' containers, dependents first",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			return g.engine().Stop(cmd.Context(), p, args, stopTimeout(secs))
		},
	}
	c.Flags().IntVarP(&secs, "timeout", "t", -1, "seconds to wait before killing (default: the service's stop_grace_period)")
	return c
}

func newComposeStartCmd(g *globals, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "start [SERVICE...]",
		Short: "Start the services' existing containers, dependencies first",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			return g.engine().Start(cmd.Context(), p, args)
		},
	}
}

func newComposeRestartCmd(g *globals, f *composeFlags) *cobra.Command {
	var secs int
	c := &cobra.Command{
		Use:   "restart [SERVICE...]",
		Short: "Restart the services' containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			return g.engine().Restart(cmd.Context(), p, args, stopTimeout(secs))
		},
	}
	c.Flags().IntVarP(&secs, "timeout", "t", -1, "seconds to wait before killing (default: the service's stop_grace_period)")
	return c
}

func newComposeExecCmd(g *globals, f *composeFlags) *cobra.Command {
	var (
		index   int
		user    string
		workdir string
		env     []string
	)
	c := &cobra.Command{
		Use:   "exec [flags] SERVICE COMMAND [ARG...]",
		Short: "Run a command in a running service container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			ctr, err := g.engine().ServiceContainer(cmd.Context(), p, args[0], index)
			if err != nil {
				return err
			}
			code, err := g.client().Exec(cmd.Context(), ctr.ID, api.ExecRequest{Cmd: args[1:], User: user, WorkingDir: workdir, Env: env},
				nil, g.stdout, g.stderr)
			if err != nil {
				return withCode(126, err)
			}
			if code != 0 {
				return withCode(code, nil)
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().IntVar(&index, "index", 1, "which replica of the service")
	c.Flags().StringVarP(&user, "user", "u", "", "run as this user")
	c.Flags().StringVarP(&workdir, "workdir", "w", "", "run in this directory")
	c.Flags().StringArrayVarP(&env, "env", "e", nil, "set an environment variable KEY=VALUE")
	c.Flags().BoolP("no-TTY", "T", true, "no terminal (the default: skiff compose exec never allocates one)")
	return c
}

func newComposeRunCmd(g *globals, f *composeFlags) *cobra.Command {
	var (
		rm     bool
		noDeps bool
		env    []string
	)
	c := &cobra.Command{
		Use:   "run [flags] SERVICE [COMMAND [ARG...]]",
		Short: "Run a one-off command in a new container of a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := f.load(ctx, g, true)
			if err != nil {
				return err
			}
			s, err := p.GetService(args[0])
			if err != nil {
				return errdefs.NotFound("%v", err)
			}
			e := g.engine()
			if deps := sortedDeps(s); !noDeps && len(deps) > 0 {
				if err := e.Up(ctx, p, compose.UpOptions{Services: deps, Builder: g.builder}); err != nil {
					return err
				}
			}
			req, err := compose.OneoffRequest(p, s, args[1:], env)
			if err != nil {
				return err
			}
			req.Config.AutoRemove = rm
			if req.Config.SecretMounts, err = e.SecretMounts(ctx, p, s); err != nil {
				return withCode(125, err)
			}
			if err := e.EnsureAnonymousVolumes(ctx, p, s, req); err != nil {
				return withCode(125, err)
			}
			ctr, err := g.client().CreateContainer(ctx, req)
			if err != nil {
				return withCode(125, err)
			}
			if err := e.PutConfigs(ctx, p, s, ctr.ID); err != nil {
				g.client().Remove(ctx, ctr.ID, true)
				return withCode(125, err)
			}
			res, err := g.client().Attach(ctx, ctr.ID, true, nil, g.stdout, g.stderr)
			if rm {
				e.RemoveAnonymousVolumes(ctx, req)
			}
			if err != nil {
				return withCode(startExitCode(err), err)
			}
			if res.ExitCode != 0 {
				return withCode(res.ExitCode, nil)
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVar(&rm, "rm", false, "remove the container when it exits")
	c.Flags().BoolVar(&noDeps, "no-deps", false, "do not start the services it depends on")
	c.Flags().StringArrayVarP(&env, "env", "e", nil, "set an environment variable KEY=VALUE")
	return c
}

func sortedDeps(s types.ServiceConfig) []string {
	var out []string
	for d := range s.DependsOn {
		out = append(out, d)
	}
	return out
}

func newComposeImagesCmd(g *globals, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "images [SERVICE...]",
		Short: "List the images the project's containers use",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			cs, err := g.engine().Containers(cmd.Context(), p.Name, false)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE")
			for _, c := range cs {
				img, err := g.client().Image(cmd.Context(), c.ImageID)
				if err != nil {
					continue
				}
				repo, tag := splitRef(c.ImageRef)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, repo, tag, shortID(img.ID), humanSize(img.Size))
			}
			return tw.Flush()
		},
	}
}

// composeImageRefs are the images of the named services (all when none),
// keeping those keep(s) accepts.
func composeImageRefs(p *types.Project, names []string, keep func(types.ServiceConfig) bool) ([]string, error) {
	if len(names) == 0 {
		names = p.ServiceNames()
	}
	var refs []string
	for _, n := range names {
		s, err := p.GetService(n)
		if err != nil {
			return nil, errdefs.NotFound("%v", err)
		}
		if keep(s) {
			refs = append(refs, compose.ImageName(p, s))
		}
	}
	return refs, nil
}

func newComposePullCmd(g *globals, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pull [SERVICE...]",
		Short: "Pull the images of services that name one (not those only built)",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			refs, err := composeImageRefs(p, args, func(s types.ServiceConfig) bool { return s.Image != "" && s.Build == nil })
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if _, err := g.client().PullImage(cmd.Context(), api.ImagePullRequest{Ref: ref}); err != nil {
					return fmt.Errorf("pull %s: %w", ref, err)
				}
				fmt.Fprintf(g.stderr, " ✔ Image %s  Pulled\n", ref)
			}
			return nil
		},
	}
}

func newComposePushCmd(g *globals, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "push [SERVICE...]",
		Short: "Push the images of services with a build section",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			refs, err := composeImageRefs(p, args, func(s types.ServiceConfig) bool { return s.Build != nil && s.Image != "" })
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if err := g.client().PushImage(cmd.Context(), api.ImagePullRequest{Ref: ref}); err != nil {
					return fmt.Errorf("push %s: %w", ref, err)
				}
				fmt.Fprintf(g.stderr, " ✔ Image %s  Pushed\n", ref)
			}
			return nil
		},
	}
}

func newComposeConvertCmd(g *globals, f *composeFlags) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "convert [flags]",
		Short: "Print the App YAML of the services marked x-skiff: {app: true}",
		Long: `Print, as App resources for skiff apply, the services marked
x-skiff: {app: true} (every service with --apps): named PROJECT-SERVICE,
served by the ingress at SERVICE.PROJECT.localhost, their healthcheck as
the readiness probe, x-skiff.scale as their autoscaling and x-skiff.port
(default the first port) as the port they serve. An App's replicas join
skiff's default network and the service's networks (PROJECT_NETWORK),
which must exist: skiff compose up runs the marked services as Apps and
makes the networks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			names, err := compose.AppServices(p, all)
			if err != nil {
				return err
			}
			if err := f.checkKeys(g, p, names); err != nil {
				return err
			}
			if len(names) == 0 {
				return errdefs.Invalid("no service is marked x-skiff: {app: true}: mark one, or give --apps")
			}
			for i, n := range names {
				a, err := compose.AppFor(p, p.Services[n])
				if err != nil {
					return err
				}
				b, err := yaml.Marshal(a)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(g.stdout, "---")
				}
				g.stdout.Write(b)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "apps", false, "convert every service")
	return c
}
