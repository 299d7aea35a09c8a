package oci

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/lazyregexp"
)

// SpecVersion is the ociVersion of the specs Spec builds. It is 1.0.2,
// not the version of the specs-go module, because crun 1.8 (Debian 12)
// rejects any ociVersion without "1.0" ("unknown version specified"),
// and Spec uses nothing newer.
const SpecVersion = "1.0.2"

// Input is everything Spec needs to build a container's spec.
type Input struct {
	// ID is the container id; it names the cgroup and, cut to 12
	// characters, is the default hostname.
	ID string
	// Hostname overrides Config.Hostname and the default.
	Hostname string
	// Rootfs is the mounted root filesystem (an absolute path).
	Rootfs string
	// Image is the image's configuration.
	Image v1.Config
	// Config is what the user asked for.
	Config api.ContainerConfig
	// CgroupParent is the cgroup path the container's cgroup is made
	// under (cgroupsPath = CgroupParent/ID); DefaultCgroupParent if empty.
	CgroupParent string
	// NetNS is "" for a new network namespace holding only loopback, or
	// the path of a network namespace to join.
	NetNS string
	// IDMap, when set, runs the container in a user namespace of its own
	// with this mapping: UserNS is then the path of a pinned user
	// namespace with the same mapping to join, or "" for a new one.
	IDMap  *api.IDMap
	UserNS string
	// Mounts are extra mounts (resolv.conf, hosts, volumes), appended after
	// the default ones.
	Mounts []specs.Mount
	// HostRlimits reads the calling process's hard RLIMIT_NOFILE and never
	// asks for more (raising it needs CAP_SYS_RESOURCE).
	HostRlimits bool
	// HostCapabilities drops the capabilities the calling process's
	// bounding set lacks, so a privileged container or a CapAdd does not
	// ask for one the runtime cannot grant.
	HostCapabilities bool
	// HostArches leaves out of the seccomp filter the architectures the
	// running kernel cannot execute: x32 on an amd64 kernel built without
	// CONFIG_X86_X32_ABI (most distributions'). No process can make such
	// system calls there, so the filter is the same in effect, and runc
	// compiles a third less of it (about 8 ms per container here).
	HostArches bool
}

var (
	idPattern       = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	hostnamePattern = lazyregexp.New(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$`)
	envKeyPattern   = lazyregexp.New(`^[^=\x00]+$`)
)

// Spec builds the OCI runtime spec of a container. See the package
// documentation for the defaults it applies.
func Spec(in Input) (*specs.Spec, error) {
	if !idPattern.MatchString(in.ID) {
		return nil, errdefs.Invalid("container id %q is not valid: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", in.ID)
	}
	if !filepath.IsAbs(in.Rootfs) {
		return nil, errdefs.Invalid("rootfs %q is not an absolute path", in.Rootfs)
	}
	cfg := in.Config
	if cfg.ShmSize < 0 {
		return nil, errdefs.Invalid("shm size %d must not be negative: give a size such as 64m, or leave it out for 64 MiB", cfg.ShmSize)
	}
	proc, hostname, err := process(in)
	if err != nil {
		return nil, err
	}
	resources, err := Resources(cfg.Resources)
	if err != nil {
		return nil, err
	}
	resources.Devices = deviceRules(cfg.Privileged)
	devices, rules, err := hostDevices(cfg.Devices)
	if err != nil {
		return nil, err
	}
	resources.Devices = append(resources.Devices, rules...)
	parent := in.CgroupParent
	if parent == "" {
		parent = DefaultCgroupParent
	}
	if !path.IsAbs(parent) {
		return nil, errdefs.Invalid("cgroup parent %q is not an absolute cgroup path", parent)
	}
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace}
	if in.NetNS != "" {
		if !filepath.IsAbs(in.NetNS) {
			return nil, errdefs.Invalid("network namespace %q is not an absolute path", in.NetNS)
		}
		netns.Path = in.NetNS
	}
	s := &specs.Spec{
		Version:  SpecVersion,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: cfg.ReadonlyRootfs},
		Hostname: hostname,
		Process:  proc,
		Mounts:   append(defaultMounts(cfg.Privileged, cfg.ShmSize), in.Mounts...),
		Linux: &specs.Linux{
			CgroupsPath: path.Join(parent, in.ID),
			Resources:   resources,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.CgroupNamespace},
				netns,
			},
			Sysctl:  maps.Clone(cfg.Sysctls),
			Devices: devices,
		},
	}
	s.Linux.RootfsPropagation = rootfsPropagation(in.Mounts)
	if err := userNamespace(s, in); err != nil {
		return nil, err
	}
	if !cfg.Privileged {
		if err := confine(s, cfg.Seccomp, in.HostArches); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// rootfsPropagation is "rshared" when a mount propagates to the host
// (shared, rshared): its events only cross a root mount that is shared
// too. Otherwise "" (runc's default, rslave).
func rootfsPropagation(ms []specs.Mount) string {
	for _, m := range ms {
		if slices.Contains(m.Options, "shared") || slices.Contains(m.Options, "rshared") {
			return "rshared"
		}
	}
	return ""
}

// process is the spec's process and the container's hostname.
func process(in Input) (*specs.Process, string, error) {
	cfg := in.Config
	args, err := Args(in.Image, cfg)
	if err != nil {
		return nil, "", err
	}
	hostname, err := hostnameOf(in)
	if err != nil {
		return nil, "", err
	}
	userEnv := cfg.Env
	if cfg.Tty && !slices.ContainsFunc(userEnv, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		userEnv = append([]string{"TERM=xterm"}, userEnv...)
	}
	env, err := Env(in.Image.Env, userEnv, hostname)
	if err != nil {
		return nil, "", err
	}
	cwd, err := workingDir(in.Image.WorkingDir, cfg.WorkingDir)
	if err != nil {
		return nil, "", err
	}
	userSpec := cfg.User
	if userSpec == "" {
		userSpec = in.Image.User
	}
	user, err := ResolveUser(in.Rootfs, userSpec)
	if err != nil {
		return nil, "", err
	}
	if user.AdditionalGids, err = addGroups(in.Rootfs, user.AdditionalGids, cfg.GroupAdd); err != nil {
		return nil, "", err
	}
	caps, err := processCapabilities(in)
	if err != nil {
		return nil, "", err
	}
	rlimits, err := Rlimits(cfg.Ulimits, in.HostRlimits)
	if err != nil {
		return nil, "", err
	}
	return &specs.Process{
		Terminal:        cfg.Tty,
		ConsoleSize:     consoleSize(cfg),
		Args:            args,
		Env:             env,
		Cwd:             cwd,
		User:            user,
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		NoNewPrivileges: noNewPrivileges(cfg),
		Rlimits:         rlimits,
	}, hostname, nil
}

// hostnameOf is the hostname asked for, else the first 12 characters of
// the container's ID.
func hostnameOf(in Input) (string, error) {
	hostname := in.Hostname
	if hostname == "" {
		hostname = in.Config.Hostname
	}
	if hostname == "" {
		hostname = in.ID
		if len(hostname) > 12 {
			hostname = hostname[:12]
		}
	}
	if !hostnamePattern.MatchString(hostname) {
		return "", errdefs.Invalid("hostname %q is not valid: use up to 63 letters, digits, '.' or '-'", hostname)
	}
	return hostname, nil
}

// workingDir is the container's working directory: the one asked for,
// else the image's, else "/".
func workingDir(image, asked string) (string, error) {
	cwd := asked
	if cwd == "" {
		cwd = image
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return "", errdefs.Invalid("working directory %q is not an absolute path", cwd)
	}
	return path.Clean(cwd), nil
}

// processCapabilities is the default set with the config's additions and
// drops (all of them when privileged), bounded by the host's own when
// Input.HostCapabilities says so.
func processCapabilities(in Input) ([]string, error) {
	var caps []string
	var err error
	if in.Config.Privileged {
		caps, err = capabilities(allCapabilities, nil, nil)
	} else {
		caps, err = capabilities(DefaultCapabilities, in.Config.CapAdd, in.Config.CapDrop)
	}
	if err != nil || !in.HostCapabilities {
		return caps, err
	}
	mask, err := hostCapabilityMask()
	if err != nil {
		return nil, err
	}
	return boundedBy(caps, mask), nil
}

// nofileLimit is RLIMIT_NOFILE for the process: MaxNofile, or the host's
// hard limit when lower and host says to respect it.
func nofileLimit(host bool) (uint64, error) {
	nofile := uint64(MaxNofile)
	if host {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("read the host's RLIMIT_NOFILE: %w", err)
		}
		nofile = min(nofile, rl.Max)
	}
	return nofile, nil
}

// confine adds what an unprivileged container gets: masked and read-only
// paths and a seccomp filter: the default profile (without x32 where the
// host cannot run it, when hostArches says to check), none for
// api.SeccompUnconfined, or the profile JSON profile holds.
func confine(s *specs.Spec, profile string, hostArches bool) error {
	s.Linux.MaskedPaths = append([]string(nil), maskedPaths...)
	s.Linux.ReadonlyPaths = append([]string(nil), readonlyPaths...)
	var sc *specs.LinuxSeccomp
	var err error
	switch profile {
	case api.SeccompUnconfined:
		return nil
	case "":
		sc, err = seccomp.GetDefaultProfile(s)
	default:
		if sc, err = seccomp.LoadProfile(profile, s); err != nil {
			return errdefs.Invalid("seccomp profile: %w", err)
		}
		if err := checkSeccomp(sc); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("build the default seccomp profile: %w", err)
	}
	if hostArches && !x32Supported() {
		sc.Architectures = slices.DeleteFunc(sc.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
	}
	s.Linux.Seccomp = sc
	return nil
}

// Args returns the process's command line: the entrypoint followed by the
// cmd, with Docker's override rules. A non-nil Config.Entrypoint replaces
// the image's entrypoint and drops the image's cmd; a non-empty Config.Cmd
// replaces the image's cmd. No command at all is ErrInvalid.
func Args(image v1.Config, cfg api.ContainerConfig) ([]string, error) {
	entrypoint, cmd := image.Entrypoint, image.Cmd
	if cfg.Entrypoint != nil {
		entrypoint, cmd = cfg.Entrypoint, nil
	}
	if len(cfg.Cmd) > 0 {
		cmd = cfg.Cmd
	}
	args := append(append([]string{}, entrypoint...), cmd...)
	if len(args) == 0 || args[0] == "" {
		return nil, errdefs.Invalid("no command: the image has no entrypoint or cmd; give one after the image name")
	}
	return args, nil
}

// Env merges the process environment: PATH (DefaultPath) and HOSTNAME,
// then the image's entries, then the user's; a later entry replaces an
// earlier one with the same key in place. TERM is not set. An entry
// without '=' or with an empty key is ErrInvalid.
func Env(imageEnv, userEnv []string, hostname string) ([]string, error) {
	out := []string{"PATH=" + DefaultPath, "HOSTNAME=" + hostname}
	index := map[string]int{"PATH": 0, "HOSTNAME": 1}
	for _, list := range [][]string{imageEnv, userEnv} {
		for _, kv := range list {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || !envKeyPattern.MatchString(k) {
				return nil, errdefs.Invalid("environment entry %q is not KEY=VALUE", kv)
			}
			if i, seen := index[k]; seen {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out, nil
}

// Resources converts the user's limits into cgroup settings: a memory
// limit with swap equal to it (so no swap), a memory soft limit (the
// reservation, at most the limit), a CFS quota over a 100 ms period, and
// a pids limit. Zero means unlimited; negative values, memory
// under 6 MiB and under 0.01 CPU are ErrInvalid.
func Resources(r api.Resources) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	switch {
	case r.MemoryBytes < 0:
		return nil, errdefs.Invalid("memory limit %d is negative", r.MemoryBytes)
	case r.MemoryBytes > 0 && r.MemoryBytes < 6<<20:
		return nil, errdefs.Invalid("memory limit %d bytes is too small: the minimum is 6 MiB", r.MemoryBytes)
	case r.MemoryBytes > 0:
		limit := r.MemoryBytes
		out.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}
	switch {
	case r.MemoryReservationBytes < 0:
		return nil, errdefs.Invalid("memory reservation %d is negative", r.MemoryReservationBytes)
	case r.MemoryBytes > 0 && r.MemoryReservationBytes > r.MemoryBytes:
		return nil, errdefs.Invalid("memory reservation %d bytes is above the memory limit %d: make it smaller", r.MemoryReservationBytes, r.MemoryBytes)
	case r.MemoryReservationBytes > 0:
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		res := r.MemoryReservationBytes
		out.Memory.Reservation = &res
	}
	switch {
	case r.NanoCPUs < 0:
		return nil, errdefs.Invalid("cpu limit %d is negative", r.NanoCPUs)
	case r.NanoCPUs > 0 && r.NanoCPUs < 1e7:
		return nil, errdefs.Invalid("cpu limit %d nano-CPUs is too small: the minimum is 0.01 CPU (10000000)", r.NanoCPUs)
	case r.NanoCPUs > 0:
		quota := r.NanoCPUs * cpuPeriod / 1e9
		period := uint64(cpuPeriod)
		out.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	switch {
	case r.PidsLimit < 0:
		return nil, errdefs.Invalid("pids limit %d is negative", r.PidsLimit)
	case r.PidsLimit > 0:
		limit := r.PidsLimit
		out.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return out, nil
}

// hostCapabilityMask reads the calling process's bounding set.
func hostCapabilityMask() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read the host's capability bounding set: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapBnd %q: %w", v, err)
			}
			return mask, nil
		}
	}
	return 0, fmt.Errorf("no CapBnd line in /proc/self/status")
}

// consoleSize is the terminal's first size, if the process has one.
func consoleSize(cfg api.ContainerConfig) *specs.Box {
	if !cfg.Tty || cfg.ConsoleSize == nil || cfg.ConsoleSize.Height == 0 || cfg.ConsoleSize.Width == 0 {
		return nil
	}
	return &specs.Box{Height: cfg.ConsoleSize.Height, Width: cfg.ConsoleSize.Width}
}
