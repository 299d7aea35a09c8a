package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

// runFlags are the flags shared by run and create.
type runFlags struct {
	name, workdir, user, hostname, memory, cpus, restart, entrypoint string
	stopSignal                                                       string
	stopTimeout                                                      int
	env, envFiles, labels, capAdd, capDrop, volumes                  []string
	pidsLimit                                                        int64
	rm, privileged, readOnly, interactive, tty, init                 bool
	pull                                                             string
	publish, aliases                                                 []string
	addHosts, dns, dnsSearch, dnsOptions                             []string
	ulimits, sysctls                                                 []string
	tmpfs, groupAdd                                                  []string
	mounts, securityOpts, devices, logOpts, attach                   []string
	logDriver                                                        string
	shmSize                                                          string
	network, ip                                                      string
	userns                                                           string
	health                                                           healthFlags
}

func (f *runFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.SetInterspersed(false) // flags after the image belong to the command
	fl.StringVar(&f.name, "name", "", "container name (default: a random one)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable KEY=VALUE (KEY alone: take it from this environment)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file of KEY=VALUE lines")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "user to run as: name, uid, name:group or uid:gid")
	fl.StringVar(&f.hostname, "hostname", "", "container host name (default: the first 12 characters of its ID)")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit, like 256m or 1g (the container is OOM-killed above it)")
	fl.StringVar(&f.cpus, "cpus", "", "CPU limit in CPUs, like 0.5")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "maximum number of processes (0: unlimited)")
	fl.StringVar(&f.restart, "restart", "no", "restart policy: no, on-failure[:N] or always")
	fl.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open; run attached sends this command's stdin to it")
	fl.BoolVarP(&f.tty, "tty", "t", false, "give the process a terminal (with -i, this terminal's keys go to it)")
	fl.BoolVar(&f.privileged, "privileged", false, "give the container all capabilities and devices, without seccomp (unsafe)")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add a Linux capability (e.g. NET_RAW for ping, or ALL)")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop a Linux capability (e.g. MKNOD, or ALL)")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set a label KEY=VALUE")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the root filesystem read-only")
	fl.BoolVar(&f.init, "init", false, "run an init as PID 1 that forwards signals to the command and reaps zombies")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal that stops the container (default SIGTERM)")
	fl.IntVar(&f.stopTimeout, "stop-timeout", -1, "seconds to wait after the stop signal before SIGKILL (default 10)")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "mount a named volume or a host path: NAME:/path[:ro] or /host/path:/path[:ro]")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port: [IP:][HOST:]CONTAINER[/tcp|udp] (default IP 127.0.0.1; see docs/networking.md)")
	fl.StringVar(&f.network, "network", "", "network to join: a network name, none or host (default: the skiff network)")
	fl.StringArrayVar(&f.aliases, "network-alias", nil, "another DNS name of the container on its network")
	fl.StringVar(&f.ip, "ip", "", "the container's IPv4 address on its network (default: the next free one)")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a line to /etc/hosts: NAME:IP (IP host-gateway: the network's gateway)")
	fl.StringArrayVar(&f.dns, "dns", nil, "a DNS server for resolv.conf, instead of the network's (repeatable)")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "a DNS search domain for resolv.conf, instead of the host's (repeatable; . for none)")
	fl.StringArrayVar(&f.dnsOptions, "dns-option", nil, "a resolv.conf option such as ndots:2, instead of the host's (repeatable)")
	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "a resource limit: NAME=SOFT[:HARD], such as nofile=1024:2048 (repeatable)")
	fl.StringArrayVar(&f.sysctls, "sysctl", nil, "a namespaced kernel setting: KEY=VALUE, such as net.ipv4.ip_unprivileged_port_start=80 (repeatable)")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount an empty tmpfs: /path[:size=64m,mode=1777,ro] (repeatable)")
	f.registerMore(fl)
	fl.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm, like 256m (default 64m)")
	fl.StringArrayVar(&f.groupAdd, "group-add", nil, "a further group of the process: a group name of the image or a numeric gid (repeatable)")
	fl.StringVar(&f.userns, "userns", "host", "user namespace: host (the host's users) or auto (container root is an unprivileged range of host ids)")
	fl.StringVar(&f.pull, "pull", "missing", "pull the image: missing (when not stored and the name has a registry) or never")
	f.health.register(fl)
}

// request builds the create request from the flags and positional args.
func (f *runFlags) request(args []string) (api.ContainerCreateRequest, error) {
	cfg := api.ContainerConfig{Image: args[0], Cmd: args[1:], WorkingDir: f.workdir, User: f.user,
		Hostname: f.hostname, AutoRemove: f.rm, Privileged: f.privileged, CapAdd: f.capAdd, CapDrop: f.capDrop,
		ReadonlyRootfs: f.readOnly, StopSignal: f.stopSignal, OpenStdin: f.interactive, Tty: f.tty, Init: f.init}
	for _, ef := range f.envFiles {
		env, err := parseEnvFile(ef)
		if err != nil {
			return api.ContainerCreateRequest{}, err
		}
		cfg.Env = append(cfg.Env, env...)
	}
	env, err := expandEnv(f.env)
	if err != nil {
		return api.ContainerCreateRequest{}, err
	}
	cfg.Env = append(cfg.Env, env...)
	if f.memory != "" {
		if cfg.Resources.MemoryBytes, err = parseBytes("memory", f.memory); err != nil {
			return api.ContainerCreateRequest{}, err
		}
	}
	if f.cpus != "" {
		if cfg.Resources.NanoCPUs, err = parseCPUs(f.cpus); err != nil {
			return api.ContainerCreateRequest{}, err
		}
	}
	if f.pidsLimit < 0 {
		return api.ContainerCreateRequest{}, errdefs.Invalid("--pids-limit must be 0 (unlimited) or more")
	}
	cfg.Resources.PidsLimit = f.pidsLimit
	if cfg.RestartPolicy, err = parseRestart(f.restart); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if cfg.Labels, err = parseLabels(f.labels); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if f.entrypoint != "" {
		cfg.Entrypoint = strings.Fields(f.entrypoint)
	}
	if f.stopTimeout >= 0 {
		t := f.stopTimeout
		cfg.StopTimeout = &t
	}
	cfg.Network, cfg.NetworkAliases, cfg.IP = f.network, f.aliases, f.ip
	if cfg.UserNS = f.userns; cfg.UserNS == api.UserNSHost {
		cfg.UserNS = ""
	}
	cfg.ExtraHosts, cfg.DNS, cfg.DNSSearch, cfg.DNSOptions = f.addHosts, f.dns, f.dnsSearch, f.dnsOptions
	if err := api.CheckHostsDNS(&cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if err := f.limits(&cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if err := f.health.apply(&cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	for _, p := range f.publish {
		pm, err := api.ParsePort(p)
		if err != nil {
			return api.ContainerCreateRequest{}, err
		}
		cfg.Ports = append(cfg.Ports, pm)
	}
	for _, v := range f.volumes {
		mt, err := parseVolume(v)
		if err != nil {
			return api.ContainerCreateRequest{}, err
		}
		cfg.Mounts = append(cfg.Mounts, mt)
	}
	for _, t := range f.tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		mt, err := api.ParseTmpfs(target, opts)
		if err != nil {
			return api.ContainerCreateRequest{}, fmt.Errorf("invalid --tmpfs %q: %w", t, err)
		}
		cfg.Mounts = append(cfg.Mounts, mt)
	}
	if err := f.more(&cfg); err != nil {
		return api.ContainerCreateRequest{}, err
	}
	if f.shmSize != "" {
		if cfg.ShmSize, err = parseBytes("shm-size", f.shmSize); err != nil {
			return api.ContainerCreateRequest{}, err
		}
		if cfg.ShmSize <= 0 {
			return api.ContainerCreateRequest{}, errdefs.Invalid("--shm-size %q must be more than 0, like 64m", f.shmSize)
		}
	}
	cfg.GroupAdd = f.groupAdd
	if f.pull != "missing" && f.pull != "never" {
		return api.ContainerCreateRequest{}, errdefs.Invalid("invalid --pull %q: use missing or never", f.pull)
	}
	return api.ContainerCreateRequest{Name: f.name, Config: cfg}, nil
}

// parseVolume parses docker's -v syntax: SOURCE:TARGET[:ro|rw], where a
// SOURCE starting with / (or .) is a host path and anything else a named
// volume.
func parseVolume(s string) (api.Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return api.Mount{}, errdefs.Invalid("invalid -v %q: use NAME:/path[:ro] or /host/path:/path[:ro]", s)
	}
	m := api.Mount{Type: api.MountVolume, Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return api.Mount{}, errdefs.Invalid("invalid -v %q: the mode must be ro or rw", s)
		}
	}
	if strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, ".") {
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return api.Mount{}, err
		}
		m.Type, m.Source = api.MountBind, abs
	}
	return m, nil
}

// hasRegistry reports whether ref names a registry host explicitly.
func hasRegistry(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// create creates a container, pulling its image first when it is
// missing and the reference names a registry.
func create(ctx context.Context, g *globals, f *runFlags, req api.ContainerCreateRequest) (api.Container, error) {
	c := g.client()
	ctr, err := c.CreateContainer(ctx, req)
	if err != nil && errors.Is(err, errdefs.ErrNotFound) && f.pull == "missing" && hasRegistry(req.Config.Image) && strings.Contains(err.Error(), "image") {
		fmt.Fprintf(g.stderr, "Unable to find image '%s' locally, pulling\n", req.Config.Image)
		if _, perr := c.PullImage(ctx, api.ImagePullRequest{Ref: req.Config.Image}); perr != nil {
			return ctr, perr
		}
		ctr, err = c.CreateContainer(ctx, req)
	}
	return ctr, err
}

// startExitCode is docker's exit code for a container that failed to start.
func startExitCode(err error) int {
	msg := err.Error()
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") {
		return 127
	}
	if errors.Is(err, errdefs.ErrInvalid) && strings.Contains(msg, "start container") {
		return 126
	}
	return 125
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	var detach bool
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create and start a container",
		Long: `Create a container from IMAGE and start it.

Attached (the default), skiff prints the container's output and exits
with its exit code. With -d it prints the container ID and returns.`,
		Example: `  skiff run --rm hello
  skiff run -d --name web -m 256m --cpus 0.5 --restart on-failure:3 hello
  skiff run --rm busybox sh -c 'echo $HOSTNAME'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(args)
			if err != nil {
				return withCode(125, err)
			}
			if f.tty {
				size, restore, err := g.useTerminal(f.interactive && !detach)
				if err != nil {
					return withCode(125, err)
				}
				defer restore()
				req.Config.ConsoleSize = size
			}
			ctx := cmd.Context()
			cl := g.client()
			att, err := f.attachStreams()
			if err != nil {
				return withCode(125, err)
			}
			if err := checkAttach(&f, detach); err != nil {
				return withCode(125, err)
			}
			if detach {
				req.Start = true
				ctr, err := create(ctx, g, &f, req)
				if err != nil {
					return withCode(startExitCode(err), err)
				}
				fmt.Fprintln(g.stdout, ctr.ID)
				return nil
			}
			ctr, err := create(ctx, g, &f, req)
			if err != nil {
				return withCode(125, err)
			}
			// Forward SIGINT/SIGTERM to the container, as docker does.
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
			defer signal.Stop(sigs)
			go func() {
				for s := range sigs {
					kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					cl.Kill(kctx, ctr.ID, fmt.Sprint(int(s.(syscall.Signal))))
					cancel()
				}
			}()
			if !att.stdout && !att.stderr {
				fmt.Fprintln(g.stdout, ctr.ID) // as docker does: output is not attached
			}
			var stdin io.Reader
			if f.interactive && att.stdin {
				stdin = g.stdin
				if f.tty {
					stdin = &detachReader{r: g.stdin}
				}
			}
			if f.tty {
				stop := g.watchTerminalSize(func(size api.ConsoleSize) { cl.Resize(context.WithoutCancel(ctx), ctr.ID, size) })
				defer stop()
			}
			stdout, stderr := attachedWriters(att, g.stdout, g.stderr)
			res, err := cl.Attach(context.WithoutCancel(ctx), ctr.ID, true, stdin, stdout, stderr)
			if errors.Is(err, client.ErrDetached) {
				g.saidDetached(ctr.Name)
				return nil
			}
			if err != nil {
				if f.rm {
					cl.Remove(context.Background(), ctr.ID, true)
				}
				return withCode(startExitCode(err), err)
			}
			if f.rm {
				// Return once it is gone, so a following ps does not show it.
				wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cl.Wait(wctx, ctr.ID, "removed")
				cancel()
			}
			if res.ExitCode != 0 {
				return withCode(res.ExitCode, nil)
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the container ID")
	return c
}

func newCreateCmd(g *globals) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create a container without starting it",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(args)
			if err != nil {
				return withCode(125, err)
			}
			if f.tty { // the terminal starts as large as this one
				req.Config.ConsoleSize, _, _ = g.useTerminal(false)
			}
			ctr, err := create(cmd.Context(), g, &f, req)
			if err != nil {
				return withCode(125, err)
			}
			fmt.Fprintln(g.stdout, ctr.ID)
			return nil
		},
	}
	f.register(c)
	return c
}

// limits sets cfg's Ulimits and Sysctls from --ulimit and --sysctl.
func (f *runFlags) limits(cfg *api.ContainerConfig) error {
	for _, s := range f.ulimits {
		u, err := api.ParseUlimit(s)
		if err != nil {
			return err
		}
		cfg.Ulimits = append(cfg.Ulimits, u)
	}
	for _, s := range f.sysctls {
		k, v, err := api.ParseSysctl(s)
		if err != nil {
			return err
		}
		if cfg.Sysctls == nil {
			cfg.Sysctls = map[string]string{}
		}
		cfg.Sysctls[k] = v
	}
	return api.CheckLimits(cfg)
}
