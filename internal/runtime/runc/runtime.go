package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/lazyregexp"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/cgroups"
)

// DefaultStateDir is the state directory of a Runtime made without
// WithStateDir.
const DefaultStateDir = "/run/skiff/runtime"

// Runtime runs containers with an OCI runtime binary under conmon. It is
// safe for concurrent use. Close stops its background watcher; the
// containers keep running.
type Runtime struct {
	stateDir    string
	runtimeName string // "runc", "crun" or the binary's base name
	runtimePath string // the binary conmon and Runtime run (may be the crun wrapper)
	binaryPath  string // the runtime binary itself
	conmonPath  string
	sealed      *os.File // runc's sealed in-memory copy that runtimePath names, if any
	cg          *cgroups.Reader
	info        runtime.Info
	w           *watcher
}

var _ runtime.Runtime = (*Runtime)(nil)

type options struct {
	stateDir string
	runtime  string
	conmon   string
	cgroot   string
}

// Option configures New.
type Option func(*options)

// WithStateDir sets the directory holding the runtime's --root, exit
// files, pid files and conmon sockets. Each daemon needs its own.
func WithStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithRuntime selects the OCI runtime: "runc" (default), "crun", or a path
// to a runtime binary.
func WithRuntime(nameOrPath string) Option { return func(o *options) { o.runtime = nameOrPath } }

// WithConmon sets the conmon binary (default: "conmon" in PATH).
func WithConmon(path string) Option { return func(o *options) { o.conmon = path } }

// WithCgroupRoot sets where the cgroup hierarchies are mounted (default
// /sys/fs/cgroup).
func WithCgroupRoot(dir string) Option { return func(o *options) { o.cgroot = dir } }

// New checks the runtime binary and conmon, prepares the state directory
// and starts watching it for container exits. Containers already in the
// state directory (left by an earlier Runtime) are adopted.
func New(ctx context.Context, opts ...Option) (*Runtime, error) {
	o := options{stateDir: DefaultStateDir, runtime: "runc", conmon: "conmon"}
	for _, opt := range opts {
		opt(&o)
	}
	if !filepath.IsAbs(o.stateDir) {
		return nil, errdefs.Invalid("state directory %q is not an absolute path", o.stateDir)
	}
	binary, err := exec.LookPath(o.runtime)
	if err != nil {
		return nil, errdefs.NotImplemented("oci runtime %q not found: install it (apt-get install %s) or give its path: %w", o.runtime, filepath.Base(o.runtime), err)
	}
	if binary, err = filepath.Abs(binary); err != nil {
		return nil, err
	}
	conmon, err := exec.LookPath(o.conmon)
	if err != nil {
		return nil, errdefs.NotImplemented("conmon not found: install it (apt-get install conmon) or give its path: %w", err)
	}
	if conmon, err = filepath.Abs(conmon); err != nil {
		return nil, err
	}
	cg, err := cgroups.NewReader(o.cgroot)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"runtime", "exits", "containers", "sock"} {
		if err := os.MkdirAll(filepath.Join(o.stateDir, d), 0o700); err != nil {
			return nil, errdefs.Unavailable("create state directory: %w", err)
		}
	}
	r := &Runtime{
		stateDir:    o.stateDir,
		runtimeName: filepath.Base(binary),
		runtimePath: binary,
		binaryPath:  binary,
		conmonPath:  conmon,
		cg:          cg,
	}
	if err := r.setupCrun(ctx); err != nil {
		return nil, err
	}
	if err := r.useSealedRunc(); err != nil {
		// Slower, not broken: runc copies itself for each container.
		r.runtimePath = r.binaryPath
	}
	r.info = runtime.Info{
		Name:           r.runtimeName,
		Path:           binary,
		Version:        version(ctx, binary),
		Monitor:        "conmon",
		MonitorPath:    conmon,
		MonitorVersion: version(ctx, conmon),
		CgroupLayout:   string(cg.Layout()),
	}
	if r.w, err = newWatcher(filepath.Join(o.stateDir, "exits")); err != nil {
		return nil, err
	}
	r.adopt()
	return r, nil
}

// Close stops the Runtime's exit and log watcher. Containers keep running
// and a later Runtime on the same state directory adopts them.
func (r *Runtime) Close() error {
	err := r.w.close()
	if r.sealed != nil {
		r.sealed.Close()
	}
	return err
}

// StateDir returns the Runtime's state directory.
func (r *Runtime) StateDir() string { return r.stateDir }

// Info describes the runtime binary, conmon and the cgroup layout.
func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) { return r.info, nil }

var versionPattern = lazyregexp.New(`version\s+(\S+)`)

// version runs "bin --version" and returns the first version it prints.
func version(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return ""
	}
	if m := versionPattern.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// idPattern is what container ids may look like (they name files).
var idPattern = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return errdefs.Invalid("container id %q is not valid: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}

// meta is what Create records about a container in its state directory.
type meta struct {
	ID         string `json:"id"`
	Bundle     string `json:"bundle"`
	LogPath    string `json:"logPath"`
	LogMaxSize int64  `json:"logMaxSize,omitempty"`
	// LogMaxFiles is CreateOpts.LogMaxFiles (0: 2).
	LogMaxFiles int    `json:"logMaxFiles,omitempty"`
	CgroupsPath string `json:"cgroupsPath"`
	// Stdin: conmon keeps the process's stdin open for its attach socket.
	Stdin bool `json:"stdin,omitempty"`
	// Terminal: conmon holds the process's terminal.
	Terminal bool `json:"terminal,omitempty"`
}

func (r *Runtime) containerDir(id string) string {
	return filepath.Join(r.stateDir, "containers", id)
}

func (r *Runtime) exitFile(id string) string { return filepath.Join(r.stateDir, "exits", id) }

// loadMeta reads the container's record; an unknown id is ErrNotFound.
func (r *Runtime) loadMeta(id string) (meta, error) {
	var m meta
	if err := checkID(id); err != nil {
		return m, err
	}
	b, err := os.ReadFile(filepath.Join(r.containerDir(id), "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return m, errdefs.NotFound("container %s not found", id)
	}
	if err != nil {
		return m, fmt.Errorf("read container %s state: %w", id, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse container %s state: %w", id, err)
	}
	return m, nil
}

// runtimeCmd builds "<runtime> --root <state>/runtime args...".
func (r *Runtime) runtimeCmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--root", filepath.Join(r.stateDir, "runtime")}, args...)
	cmd := exec.CommandContext(ctx, r.runtimePath, full...)
	cmd.Args[0] = r.runtimeName // not /proc/<pid>/fd/<n> in ps
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd
}

// run runs the runtime binary and returns its stdout; a failure is
// classified from the binary's message.
func (r *Runtime) run(ctx context.Context, id string, args ...string) ([]byte, error) {
	cmd := r.runtimeCmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(id, args[0], runtimeMessage(stderr.Bytes()), err)
	}
	return stdout.Bytes(), nil
}

var msgPattern = lazyregexp.New(`msg="((?:[^"\\]|\\.)*)"`)

// runtimeMessage extracts the message from runc's logfmt error line, or
// returns the trimmed output.
func runtimeMessage(stderr []byte) string {
	if m := msgPattern.FindAllSubmatch(stderr, -1); m != nil {
		return strings.ReplaceAll(string(m[len(m)-1][1]), `\"`, `"`)
	}
	return strings.TrimSpace(string(stderr))
}

// classify turns a failed runtime command into a categorized error.
func classify(id, verb, msg string, err error) error {
	if msg == "" {
		msg = err.Error()
	}
	lower := strings.ToLower(msg)
	e := fmt.Errorf("%s %s: %s", verb, id, msg)
	switch {
	case strings.Contains(lower, "does not exist") || strings.Contains(lower, "not found") && strings.Contains(lower, "container"):
		return errdefs.WithCategory(errdefs.ErrNotFound, e)
	case strings.Contains(lower, "not running"), strings.Contains(lower, "stopped"),
		strings.Contains(lower, "already running"), strings.Contains(lower, "already exists"),
		strings.Contains(lower, "process already finished"), strings.Contains(lower, "cannot start"),
		strings.Contains(lower, "is paused"):
		return errdefs.WithCategory(errdefs.ErrConflict, e)
	default:
		return errdefs.WithCategory(errdefs.ErrUnavailable, e)
	}
}
