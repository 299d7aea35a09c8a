// Package runtime runs containers from OCI bundles through an OCI runtime
// binary (runc by default, crun where the host allows) under a per-container
// monitor (conmon), so a container keeps running, with its output logged
// and its exit code recorded, whatever happens to the skiff daemon.
//
// Vocabulary:
//   - bundle: a directory holding config.json; the rootfs is mounted by the
//     caller (see package rootfs) and named by the spec's Root.Path.
//   - monitor: the conmon process that owns the container's stdio, writes
//     its log and, when the container exits, its exit file.
//   - exit file: <state>/exits/<id>, holding the exit code; its presence
//     means the container's init process has exited.
//
// The subpackages hold the parts: oci builds specs, runc drives the runtime
// binary and monitor, rootfs mounts overlay root filesystems, cgroups reads
// usage and OOM counters for both cgroup layouts.
package runtime

import (
	"context"
	"io"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime runs containers. Container IDs are unique within one Runtime
// (one state directory); several Runtimes with different state
// directories can run side by side on one host.
//
// Errors are classified with internal/errdefs: an unknown id is
// ErrNotFound, a request the container's state forbids (start of a
// running container) is ErrConflict, a failing runtime binary is
// ErrUnavailable with the binary's own message included.
type Runtime interface {
	// Create writes spec to <opts.Bundle>/config.json, starts the monitor
	// and has it run "<runtime> create". On return the container exists in
	// state "created" with its init process waiting for Start; the returned
	// pid is that process. On error nothing is left behind.
	Create(ctx context.Context, id string, spec *specs.Spec, opts CreateOpts) (pid int, err error)
	// Start runs the created container's process.
	Start(ctx context.Context, id string) error
	// Kill sends sig to the container's init process (all processes if all).
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	// Wait blocks until the container has exited or ctx is done. It returns
	// at once for a container that has already exited, also one that exited
	// while no daemon was running.
	Wait(ctx context.Context, id string) (ExitStatus, error)
	// Exited reports the exit status without blocking; ok is false while
	// the container has not exited.
	Exited(ctx context.Context, id string) (status ExitStatus, ok bool, err error)
	// State asks the runtime binary for the container's state, and
	// whether its monitor still runs.
	State(ctx context.Context, id string) (State, error)
	// Exec runs p inside the running container and returns its exit code
	// once it exits and its output has been copied.
	Exec(ctx context.Context, id string, p *specs.Process, stdio ExecIO) (exitCode int, err error)
	// Attach connects to the standard streams of a created or running
	// container through its monitor: the output the process writes from
	// then on and, with stdin, its input (the container must have been
	// created with CreateOpts.Stdin, else ErrConflict). A container that
	// has exited (its monitor is gone) is ErrConflict.
	Attach(ctx context.Context, id string, stdin bool) (Attachment, error)
	// Resize sets the terminal size of a container created with
	// CreateOpts.Terminal.
	Resize(ctx context.Context, id string, size specs.Box) error
	// Stats samples the container's cgroup.
	Stats(ctx context.Context, id string) (Stats, error)
	// Delete removes the container from the runtime (killing it first if
	// it still runs), and its monitor's files (exit file, pid files). It
	// does not touch the bundle, the rootfs or the log. Deleting an
	// unknown id is not an error.
	Delete(ctx context.Context, id string) error
	// Info describes the runtime binary and monitor in use.
	Info(ctx context.Context) (Info, error)
}

// Stream names one of a process's output streams.
type Stream int

// The output streams. A process on a terminal has only Stdout.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// Attachment is a connection to a container's standard streams (see
// Runtime.Attach). Reading output and writing input are independent: each
// may be done from its own goroutine, and a process that does not read
// its input never keeps its output from being read.
//
// The monitor does not buffer output for a slow reader: while an
// attachment is not read, the monitor waits, and so does the process once
// its pipes are full — as with a pipe, the reader sets the pace. The
// process's log is written before the output reaches any attachment.
type Attachment interface {
	// ReadOutput returns the next piece of the process's output and its
	// stream; p is valid until the next call. After the process and its
	// monitor have exited and all output was read, it returns io.EOF.
	ReadOutput() (s Stream, p []byte, err error)
	// Write sends p to the process's stdin (an attachment made with
	// stdin). It blocks while the process does not read.
	Write(p []byte) (int, error)
	// CloseStdin ends the process's stdin (EOF), unless the container
	// has a terminal (there the input ends with what is typed, ^D, and
	// the terminal stays open for the next attachment). Output goes on.
	CloseStdin() error
	// Close ends the attachment: later calls fail, and pending ones
	// return (a pending ReadOutput at the latest with the next piece of
	// output, which it drops). Closing
	// an attachment of a container created with CreateOpts.Stdin ends the
	// process's stdin as CloseStdin does, except for an attachment made
	// without stdin: that one keeps the process's stdin open.
	Close() error
}

// CreateOpts are the per-container settings of Create.
type CreateOpts struct {
	// Bundle is the bundle directory; it must exist.
	Bundle string
	// LogPath is the container log file (k8s-file format, see package
	// logs). Its directory must exist.
	LogPath string
	// LogMaxSize caps the log file; when it is reached the file is rotated
	// to LogPath+".1", an older .1 to .2 and so on. 0 means no cap.
	LogMaxSize int64
	// LogMaxFiles is how many files a capped log keeps, the current one
	// included (0: 2, the current one and .1; 1: none but the current
	// one).
	LogMaxFiles int
	// Stdin keeps the process's standard input open for Attach
	// (otherwise it reads /dev/null).
	Stdin bool
	// Terminal gives the process a terminal (the spec's process.terminal
	// must say so too): output and input go through it.
	Terminal bool
	// HiddenEnv names process environment variables that must not stay
	// on disk: once the runtime has created the container, config.json is
	// written again without them (processes exec'd later do not get them).
	HiddenEnv []string
}

// ExecIO carries an exec'd process's standard streams. Nil members are
// connected to /dev/null.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize, for a process on a terminal, carries the terminal's new
	// sizes while it runs.
	Resize <-chan specs.Box
}

// ExitStatus is how a container's init process ended.
type ExitStatus struct {
	// Code is the exit code; 128+N when killed by signal N.
	Code int
	// OOMKilled is true when the kernel's OOM killer fired in the
	// container's cgroup.
	OOMKilled bool
	// At is when the process exited (the exit file's time).
	At time.Time
}

// Status values reported by State.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// State is the runtime's view of a container.
type State struct {
	ID     string
	Pid    int
	Status string
	// Monitor is true while the container's monitor (conmon) runs: only
	// then will its exit be recorded, and its output kept.
	Monitor bool
}

// Stats is one sample of a container's cgroup counters.
type Stats struct {
	Time             time.Time
	CPUUsageNanos    uint64
	MemoryUsageBytes uint64
	MemoryLimitBytes uint64 // 0 when unlimited
	Pids             uint64
	PidsLimit        uint64 // 0 when unlimited
	OOMKills         uint64
}

// Info describes the runtime in use.
type Info struct {
	Name           string // "runc", "crun", or the binary's base name
	Path           string
	Version        string
	Monitor        string // "conmon"
	MonitorPath    string
	MonitorVersion string
	CgroupLayout   string // "v1", "v2" or "hybrid"
}
