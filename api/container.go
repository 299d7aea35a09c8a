package api

import (
	"encoding/json"
	"time"
)

// ContainerConfig is what a user asks for when creating a container. Empty
// fields take the image's values (Entrypoint, Cmd, Env, WorkingDir, User) or
// skiff's defaults.
type ContainerConfig struct {
	// Image is a reference ("hello", "localhost/hello:1.0",
	// "registry:5000/x@sha256:...") or an image ID ("sha256:...").
	Image string `json:"image"`
	// Entrypoint, when non-nil, replaces the image's entrypoint.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Cmd, when non-empty, replaces the image's cmd.
	Cmd []string `json:"cmd,omitempty"`
	// Env is KEY=VALUE pairs added to (and overriding) the image's.
	Env []string `json:"env,omitempty"`
	// SecretEnv are variables whose values are read from skiff secrets
	// each time the container starts; they override Env and the image's.
	// Their values are never stored with the container.
	SecretEnv  []SecretEnvVar    `json:"secretEnv,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty"`
	User       string            `json:"user,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`

	Resources     Resources     `json:"resources"`
	RestartPolicy RestartPolicy `json:"restartPolicy"`
	// AutoRemove deletes the container once it has exited and will not be
	// restarted (docker run --rm).
	AutoRemove bool `json:"autoRemove,omitempty"`
	// OpenStdin keeps the process's stdin open for an attach with stdin
	// (docker run -i); otherwise it reads /dev/null. Each run's stdin ends
	// when the attachment that fed it ends.
	OpenStdin bool `json:"openStdin,omitempty"`
	// Tty runs the process on a terminal (docker run -t): its output is
	// one stream with terminal line endings, logged as stdout; with
	// OpenStdin, attached input is typed into it. TERM is xterm unless Env
	// sets it. ConsoleSize is the terminal's first size; resize it with
	// POST /v1/containers/{id}/resize.
	Tty         bool         `json:"tty,omitempty"`
	ConsoleSize *ConsoleSize `json:"consoleSize,omitempty"`
	// Privileged gives all capabilities, all devices and no seccomp filter.
	Privileged bool     `json:"privileged,omitempty"`
	CapAdd     []string `json:"capAdd,omitempty"`
	CapDrop    []string `json:"capDrop,omitempty"`
	// ReadonlyRootfs mounts the container's root filesystem read-only.
	ReadonlyRootfs bool `json:"readonlyRootfs,omitempty"`
	// ShmSize is the size of /dev/shm in bytes (0: 64 MiB, docker's
	// default).
	ShmSize int64 `json:"shmSize,omitempty"`
	// GroupAdd are further groups of the process, each a numeric gid or
	// a group name from the image's /etc/group (docker run --group-add).
	GroupAdd []string `json:"groupAdd,omitempty"`
	// StopSignal overrides the image's stop signal (default SIGTERM).
	StopSignal string `json:"stopSignal,omitempty"`
	// StopTimeout is the default grace period in seconds before SIGKILL
	// (default 10).
	StopTimeout *int `json:"stopTimeout,omitempty"`

	// Network is the network to join: a network name, "none" or "host".
	// Empty means the default network.
	Network string `json:"network,omitempty"`
	// IP is the container's IPv4 address on Network (docker run --ip):
	// a bridge network's address inside its subnet, not its gateway.
	// Empty leases the next free one at each start; an address another
	// container holds is a conflict.
	IP string `json:"ip,omitempty"`
	// NetworkAliases are extra DNS names of the container on its network.
	NetworkAliases []string `json:"networkAliases,omitempty"`
	// ExtraNetworks are further bridge networks the container joins
	// besides Network (which must then be a network, not "none" or
	// "host"), each with its own interface, address and DNS aliases.
	// The container resolves the names of every network it is on. Ports
	// are published from Network only.
	ExtraNetworks []NetworkAttachment `json:"extraNetworks,omitempty"`
	// Ports are published on the host.
	Ports []PortMapping `json:"ports,omitempty"`
	// ExtraHosts are "NAME:IP" lines added to the container's /etc/hosts;
	// IP may be HostGateway, the gateway of the container's network.
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// DNS, when non-empty, are the nameservers of the container's
	// resolv.conf instead of the network's DNS server.
	DNS []string `json:"dns,omitempty"`
	// DNSSearch, when non-empty, replaces the host's search domains
	// ("." alone: none).
	DNSSearch []string `json:"dnsSearch,omitempty"`
	// DNSOptions, when non-empty, replace the host's resolv.conf options.
	DNSOptions []string `json:"dnsOptions,omitempty"`
	// Ulimits are the process's resource limits; one naming nofile
	// replaces the default RLIMIT_NOFILE. None may be above the host's
	// hard limit.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	// Sysctls are namespaced kernel settings of the container (see
	// CheckLimits for the keys allowed).
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Init runs a tiny init as PID 1 (docker run --init): it starts the
	// command as its child, forwards signals to it, reaps zombies and
	// exits with the child's exit code.
	Init bool `json:"init,omitempty"`
	// Mounts are named volumes and host directories mounted into the
	// container.
	Mounts []Mount `json:"mounts,omitempty"`
	// UserNS is "host" (the default) to run in the host's user namespace,
	// or "auto" for a user namespace of its own: container root is then an
	// unprivileged range of host ids (see Container.IDMap).
	UserNS string `json:"userns,omitempty"`

	// NoNewPrivileges, when set, says whether the process may gain
	// privileges through setuid files (nil: it may not, unless
	// Privileged).
	NoNewPrivileges *bool `json:"noNewPrivileges,omitempty"`
	// Seccomp is "" for the default seccomp profile, SeccompUnconfined
	// for none, or a profile's JSON in docker's format.
	Seccomp string `json:"seccomp,omitempty"`
	// AppArmor is "" or "unconfined" (this host's kernel has no AppArmor).
	AppArmor string `json:"apparmor,omitempty"`
	// LabelDisable turns SELinux labelling off (docker's label=disable;
	// SELinux is not enabled for containers).
	LabelDisable bool `json:"labelDisable,omitempty"`
	// Devices are host devices put into the container.
	Devices []DeviceMapping `json:"devices,omitempty"`
	// Log is how the container's log is kept (docker's --log-driver and
	// --log-opt).
	Log LogConfig `json:"log,omitzero"`

	// SecretMounts are directories of files holding skiff secret values,
	// each on a tmpfs of its own, written at every start (the values are
	// never stored with the container).
	SecretMounts []SecretMount `json:"secretMounts,omitempty"`

	// Healthcheck is the check the daemon runs in the container while it
	// runs (docker run --health-*, compose's healthcheck). Nil takes the
	// image's HEALTHCHECK; Test ["NONE"] disables any. A Healthcheck
	// without Test takes the image's test with its own timings. Zero
	// durations and retries take docker's defaults (interval 30s, timeout
	// 30s, start period 0, start interval 5s, 3 retries).
	Healthcheck *HealthConfig `json:"healthcheck,omitempty"`
}

// User namespace modes of ContainerConfig.UserNS.
const (
	UserNSHost = "host"
	UserNSAuto = "auto"
)

// IDMap is the mapping of a user namespace: uids and gids 0..Size-1 of
// the container are host ids HostID..HostID+Size-1.
type IDMap struct {
	HostID uint32 `json:"hostID"`
	Size   uint32 `json:"size"`
}

// Mount types.
const (
	// MountVolume is a named volume, created on first use under the
	// daemon's root; it outlives the containers that use it.
	MountVolume = "volume"
	// MountBind is a file or directory of the host.
	MountBind = "bind"
	// MountTmpfs is a new, empty tmpfs (memory-backed) directory.
	MountTmpfs = "tmpfs"
)

// Mount puts a named volume, a host path or a tmpfs into a container.
type Mount struct {
	// Type is "volume", "bind" or "tmpfs".
	Type string `json:"type"`
	// Source is the volume name or the absolute host path; empty for tmpfs.
	Source string `json:"source,omitempty"`
	// Target is the absolute path inside the container.
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// TmpfsSize bounds a tmpfs in bytes (0: the kernel's default, half
	// of the memory).
	TmpfsSize int64 `json:"tmpfsSize,omitempty"`
	// TmpfsMode is the permission bits of a tmpfs's root directory
	// (0: 01777, world-writable and sticky like /tmp).
	TmpfsMode uint32 `json:"tmpfsMode,omitempty"`
	// BindPropagation is a bind mount's propagation, one of
	// BindPropagations ("": rprivate).
	BindPropagation string `json:"bindPropagation,omitempty"`
	// VolumeNoCopy leaves a new named volume empty instead of filling it
	// with the image's files at Target.
	VolumeNoCopy bool `json:"volumeNoCopy,omitempty"`
}

// Resources are cgroup limits. Zero means unlimited.
type Resources struct {
	// MemoryBytes is the hard memory limit; going over it OOM-kills.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// MemoryReservationBytes is the soft limit (docker run
	// --memory-reservation, compose's deploy.resources.reservations.memory):
	// under memory pressure the kernel reclaims from the container down to
	// it first. At most MemoryBytes when that is set.
	MemoryReservationBytes int64 `json:"memoryReservationBytes,omitempty"`
	// NanoCPUs is the CPU quota in billionths of a CPU (0.5 CPU = 5e8).
	NanoCPUs int64 `json:"nanoCPUs,omitempty"`
	// PidsLimit caps the number of processes and threads.
	PidsLimit int64 `json:"pidsLimit,omitempty"`
}

// Restart policy names.
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// RestartPolicy says when an exited container is started again.
type RestartPolicy struct {
	// Name is "no" (default), "on-failure" or "always".
	Name string `json:"name,omitempty"`
	// MaxRetries bounds restarts for on-failure; 0 means no bound.
	MaxRetries int `json:"maxRetries,omitempty"`
}

// Container statuses.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusRestarting = "restarting" // exited, waiting for its backoff to restart
	StatusExited     = "exited"
	StatusStopping   = "stopping"
)

// ContainerState is what the daemon observed of a container.
type ContainerState struct {
	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// RestartCount counts restarts done by the restart policy.
	RestartCount int `json:"restartCount"`
	// Error is the last error starting or running the container, if any.
	Error string `json:"error,omitempty"`
	// Health is what the container's health check found, for a container
	// that has one and has run.
	Health *Health `json:"health,omitempty"`
}

// Health statuses (Health.Status), docker's.
const (
	// HealthStarting: no check has passed yet since the container
	// started, and fewer than Retries failed after the start period.
	HealthStarting = "starting"
	// HealthHealthy: the last check passed.
	HealthHealthy = "healthy"
	// HealthUnhealthy: Retries checks in a row failed, or the container
	// is no longer running.
	HealthUnhealthy = "unhealthy"
)

// Health is the state of a container's health check.
type Health struct {
	// Status is starting, healthy or unhealthy.
	Status string `json:"status"`
	// FailingStreak counts the failed checks since the last that passed
	// (failures during the start period not counted).
	FailingStreak int `json:"failingStreak"`
	// Log holds the last checks, oldest first (at most HealthLogKept).
	Log []HealthResult `json:"log,omitempty"`
}

// HealthLogKept is how many checks Health.Log keeps; HealthOutputMax
// bounds each one's Output in bytes.
const (
	HealthLogKept   = 5
	HealthOutputMax = 4096
)

// HealthResult is one run of a health check.
type HealthResult struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// ExitCode is the check's exit code: 0 passed; -1 when it could not
	// run or ran past its timeout.
	ExitCode int `json:"exitCode"`
	// Output is the check's stdout and stderr (the first HealthOutputMax
	// bytes), or why it failed to run.
	Output string `json:"output"`
}

// Container is a container as the API returns it.
type Container struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Created time.Time       `json:"created"`
	Config  ContainerConfig `json:"config"`
	// ImageID is the digest of the image config the container was made from.
	ImageID string `json:"imageID"`
	// ImageRef is the fully qualified reference Config.Image resolved to.
	ImageRef string `json:"imageRef,omitempty"`
	// Process is the command line that runs (entrypoint + cmd), after the
	// image's config was applied.
	Process []string       `json:"process,omitempty"`
	State   ContainerState `json:"state"`
	// Runtime is the OCI runtime binary running this container.
	Runtime string `json:"runtime,omitempty"`
	// LogPath is where the container's stdout/stderr are kept.
	LogPath string `json:"logPath,omitempty"`
	// NetworkSettings describe the container's network while it runs.
	NetworkSettings *NetworkSettings `json:"networkSettings,omitempty"`
	// IDMap is the host id range of a container with a user namespace of
	// its own (Config.UserNS "auto"), chosen by skiff at create.
	IDMap *IDMap `json:"idMap,omitempty"`
}

// NetworkSettings are a running container's network attachments. The
// top-level fields describe its first network.
type NetworkSettings struct {
	Network string        `json:"network"`
	IP      string        `json:"ip,omitempty"`
	Gateway string        `json:"gateway,omitempty"`
	MAC     string        `json:"mac,omitempty"`
	Ports   []PortMapping `json:"ports,omitempty"` // with host ports chosen
	// NetNS is the path of the container's network namespace.
	NetNS string `json:"netns,omitempty"`
	// Networks lists every network the container is attached to, its
	// first network first, then the ones of ExtraNetworks and those
	// connected since it started, in the order they were attached.
	Networks []AttachedNetwork `json:"networks,omitempty"`
}

// AttachedNetwork is a container's address on one of its networks.
type AttachedNetwork struct {
	Network string `json:"network"`
	// Interface is the container's interface on the network (eth0 for
	// the first network, eth1, eth2, ... for the others).
	Interface string   `json:"interface,omitempty"`
	IP        string   `json:"ip,omitempty"`
	Gateway   string   `json:"gateway,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	Aliases   []string `json:"aliases,omitempty"`
}

// ContainerCreateRequest is the body of POST /v1/containers.
type ContainerCreateRequest struct {
	// Name is optional; a random one is chosen when empty.
	Name   string          `json:"name,omitempty"`
	Config ContainerConfig `json:"config"`
	// Start starts the container once created.
	Start bool `json:"start,omitempty"`
	// IDRangeOwner, with Config.UserNS "auto", names who owns the id
	// range the container gets ("app/NAME": every replica of an App
	// shares its App's range). Empty gives the container a range of its
	// own, freed with it. Set only inside the daemon, never from JSON.
	IDRangeOwner string `json:"-"`
}

// ContainerWaitResponse is the body returned by POST /v1/containers/{id}/wait.
type ContainerWaitResponse struct {
	ExitCode  int  `json:"exitCode"`
	OOMKilled bool `json:"oomKilled"`
}

// ExecRequest is the body of POST /v1/containers/{id}/exec. The response is
// a stream: see docs/api.md.
type ExecRequest struct {
	Cmd        []string `json:"cmd"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
	// Stdin attaches the request's stdin stream to the process.
	Stdin bool `json:"stdin,omitempty"`
	// Tty runs the process on a pseudo-terminal: its output comes as one
	// stdout stream with terminal line endings, and stdin (raw bytes)
	// goes through the terminal, so ^C interrupts it. TERM is xterm
	// unless Env sets it.
	Tty bool `json:"tty,omitempty"`
	// ConsoleSize is the terminal's initial size, with Tty.
	ConsoleSize *ConsoleSize `json:"consoleSize,omitempty"`
}

// ExecSessionHeader names, in the 101 answer to an exec with tty and
// stdin, the session whose terminal POST /v1/exec/{session}/resize sizes.
const ExecSessionHeader = "Skiff-Exec-Session"

// ConsoleSize is a terminal's size in characters.
type ConsoleSize struct {
	Height uint `json:"height"`
	Width  uint `json:"width"`
}

// LogEntry is one line of a container's output.
//
// In JSON the line's bytes are carried base64-encoded in "data" (see
// MarshalJSON), so output that is not UTF-8 comes back byte for byte.
type LogEntry struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	// Line is the bytes of the line without its trailing newline, as the
	// process wrote them: not necessarily UTF-8.
	Line string `json:"-"`
	// Partial is true when the line was split because it was too long
	// and continues in the next entry.
	Partial bool `json:"partial,omitempty"`
}

// logEntryJSON is LogEntry on the wire.
type logEntryJSON struct {
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"`
	Data    []byte    `json:"data"`
	Partial bool      `json:"partial,omitempty"`
}

// MarshalJSON encodes e as {"time", "stream", "data", "partial"}, data
// being the base64 (RFC 4648, with padding) of Line's bytes.
func (e LogEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(logEntryJSON{Time: e.Time, Stream: e.Stream, Data: []byte(e.Line), Partial: e.Partial})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (e *LogEntry) UnmarshalJSON(b []byte) error {
	var w logEntryJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = LogEntry{Time: w.Time, Stream: w.Stream, Line: string(w.Data), Partial: w.Partial}
	return nil
}

// ContainerStats is one sample of a container's resource usage.
type ContainerStats struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Time             time.Time `json:"time"`
	CPUUsageNanos    uint64    `json:"cpuUsageNanos"`
	CPUPercent       float64   `json:"cpuPercent"`
	MemoryUsageBytes uint64    `json:"memoryUsageBytes"`
	MemoryLimitBytes uint64    `json:"memoryLimitBytes"`
	Pids             uint64    `json:"pids"`
	PidsLimit        uint64    `json:"pidsLimit,omitempty"`
}

// Volume is a named volume as the API returns it.
type Volume struct {
	Name string `json:"name"`
	// Mountpoint is the volume's directory on the host.
	Mountpoint string            `json:"mountpoint"`
	Created    time.Time         `json:"created,omitzero"`
	Labels     map[string]string `json:"labels,omitempty"`
	// UsedBy names the containers (running or not) that mount it.
	UsedBy []string `json:"usedBy,omitempty"`
}

// VolumeCreateRequest is the body of POST /v1/volumes.
type VolumeCreateRequest struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// VolumePruneResponse lists the volumes `volume prune` removed.
type VolumePruneResponse struct {
	Deleted []string `json:"deleted"`
}

// SecretMount shows keys of version Version of secret Secret as files in
// the directory Target, each of mode 0400 owned by the container's user
// unless Mode, UID or GID say otherwise. Mounts with the same Target share
// one tmpfs.
type SecretMount struct {
	Target  string       `json:"target"`
	Secret  string       `json:"secret"`
	Version int64        `json:"version"`
	Items   []SecretItem `json:"items,omitempty"`
	// Mode is the files' permission bits (0: 0400).
	Mode uint32 `json:"mode,omitempty"`
	// UID and GID own the files, as the container sees them (nil: the
	// container's user and group).
	UID *uint32 `json:"uid,omitempty"`
	GID *uint32 `json:"gid,omitempty"`
}

// SecretEnvVar is an environment variable taken from key Key of version
// Version of secret Secret.
type SecretEnvVar struct {
	Name    string `json:"name"`
	Secret  string `json:"secret"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
}

// ContainerTop is the body returned by GET /v1/containers/{id}/top: the
// processes of a running container, one row of Titles' columns each
// (UID, PID, PPID, C, STIME, TTY, TIME, CMD, as ps -ef prints them; PIDs
// as the host sees them).
type ContainerTop struct {
	Titles    []string   `json:"titles"`
	Processes [][]string `json:"processes"`
}
