package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/fsutil"
	"skiff.dev/skiff/internal/runtime"
)

// syncMessage is what conmon writes to its sync pipe (_OCI_SYNCPIPE):
// the container's pid once "runtime create" succeeded, or a negative
// number and the runtime's error output.
type syncMessage struct {
	Data    int    `json:"data"`
	Message string `json:"message,omitempty"`
}

// Create writes the spec to the bundle, starts conmon detached (it double
// forks and calls setsid, so it outlives the caller) and waits on conmon's
// sync pipe until "<runtime> create" has finished.
func (r *Runtime) Create(ctx context.Context, id string, spec *specs.Spec, opts runtime.CreateOpts) (pid int, err error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	if spec == nil || spec.Process == nil || spec.Root == nil {
		return 0, errdefs.Invalid("container %s: spec needs a process and a root", id)
	}
	if st, err := os.Stat(opts.Bundle); err != nil || !st.IsDir() || !filepath.IsAbs(opts.Bundle) {
		return 0, errdefs.Invalid("bundle %q must be an existing directory given as an absolute path", opts.Bundle)
	}
	if !filepath.IsAbs(opts.LogPath) {
		return 0, errdefs.Invalid("log path %q must be absolute", opts.LogPath)
	}
	if st, err := os.Stat(filepath.Dir(opts.LogPath)); err != nil || !st.IsDir() {
		return 0, errdefs.Invalid("directory of log path %q must exist", opts.LogPath)
	}
	if opts.LogMaxSize < 0 {
		return 0, errdefs.Invalid("log max size %d is negative", opts.LogMaxSize)
	}
	if opts.LogMaxFiles < 0 {
		return 0, errdefs.Invalid("log max files %d is negative", opts.LogMaxFiles)
	}
	cdir := r.containerDir(id)
	if err := os.Mkdir(cdir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, errdefs.Conflict("container %s already exists: delete it first or pick another id", id)
		}
		return 0, errdefs.Unavailable("create container state directory: %w", err)
	}
	defer func() {
		if err != nil {
			r.cleanup(context.WithoutCancel(ctx), id, opts.Bundle)
		}
	}()
	// A stale exit file of an earlier container with this id would make it
	// look exited at once.
	if err := os.Remove(r.exitFile(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, errdefs.Unavailable("remove stale exit file: %w", err)
	}

	config, err := json.Marshal(spec)
	if err != nil {
		return 0, errdefs.Invalid("encode spec: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(opts.Bundle, "config.json"), config, 0o600, false); err != nil {
		return 0, errdefs.Unavailable("write config.json: %w", err)
	}
	m := meta{ID: id, Bundle: opts.Bundle, LogPath: opts.LogPath, LogMaxSize: opts.LogMaxSize, LogMaxFiles: opts.LogMaxFiles, Stdin: opts.Stdin, Terminal: opts.Terminal}
	if spec.Linux != nil {
		m.CgroupsPath = spec.Linux.CgroupsPath
	}
	mb, _ := json.Marshal(m)
	if err := fsutil.WriteFileAtomic(filepath.Join(cdir, "meta.json"), mb, 0o600, false); err != nil {
		return 0, errdefs.Unavailable("write container state: %w", err)
	}

	pid, err = r.startConmon(ctx, id, m)
	if err != nil {
		return 0, err
	}
	if len(opts.HiddenEnv) > 0 {
		if err := writeWithoutEnv(opts.Bundle, spec, opts.HiddenEnv); err != nil {
			return 0, err
		}
	}
	if m.LogMaxSize > 0 {
		rot := &rotation{logPath: m.LogPath, files: m.LogMaxFiles}
		if err := rot.sync(); err != nil {
			return 0, errdefs.Unavailable("set up log rotation: %w", err)
		}
		if err := r.w.watchLog(rot); err != nil {
			return 0, errdefs.Unavailable("set up log rotation: %w", err)
		}
	}
	return pid, nil
}

func (r *Runtime) conmonArgs(id string, m meta) []string {
	cdir := r.containerDir(id)
	args := []string{
		"--api-version", "1",
		"-c", id, "-u", id, "-n", id,
		"-r", r.runtimePath,
		"-b", m.Bundle,
		"-p", filepath.Join(cdir, "pid"),
		"-P", filepath.Join(cdir, "conmon.pid"),
		"-0", cdir,
		"--exit-dir", filepath.Join(r.stateDir, "exits"),
		"--socket-dir-path", filepath.Join(r.stateDir, "sock"),
		"-l", "k8s-file:" + m.LogPath,
		"--log-level", "error",
		"--runtime-arg", "--root",
		"--runtime-arg", filepath.Join(r.stateDir, "runtime"),
	}
	if m.LogMaxSize > 0 {
		args = append(args, "--log-size-max", strconv.FormatInt(m.LogMaxSize, 10))
	}
	if m.Stdin {
		args = append(args, "--stdin")
	}
	if m.Terminal {
		args = append(args, "--terminal")
		if m.Stdin {
			// A terminal's input ends with what is typed (^D), not with an
			// attachment: keep it for the next attach after a detach.
			args = append(args, "--leave-stdin-open")
		}
	}
	return args
}

// startConmon runs conmon and reads the container pid from its sync pipe.
func (r *Runtime) startConmon(ctx context.Context, id string, m meta) (int, error) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, errdefs.Unavailable("sync pipe: %w", err)
	}
	defer syncR.Close()
	cmd := exec.Command(r.conmonPath, r.conmonArgs(id, m)...)
	cmd.Dir = r.containerDir(id) // conmon writes its "oom" file in its working directory
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"_OCI_SYNCPIPE=3",
	}
	cmd.ExtraFiles = []*os.File{syncW}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Start()
	syncW.Close()
	if err != nil {
		return 0, errdefs.Unavailable("start conmon: %w", err)
	}
	// The first conmon process forks the monitor and exits at once.
	if err := cmd.Wait(); err != nil {
		return 0, errdefs.Unavailable("conmon for %s failed: %s: %w", id, strings.TrimSpace(stderr.String()), err)
	}

	stop := context.AfterFunc(ctx, func() { _ = syncR.SetReadDeadline(time.Now()) })
	defer stop()
	var msg syncMessage
	if err := json.NewDecoder(io.LimitReader(syncR, 1<<20)).Decode(&msg); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, errdefs.Unavailable("conmon for %s exited without reporting the container's pid (%v): see the container log %s", id, err, m.LogPath)
	}
	if msg.Data <= 0 {
		text := runtimeMessage([]byte(msg.Message))
		if text == "" {
			text = fmt.Sprintf("status %d", msg.Data)
		}
		return 0, classifyCreate(id, r.runtimeName, text)
	}
	return msg.Data, nil
}

// classifyCreate categorizes a failed "runtime create": a missing
// executable or working directory is the caller's to fix.
func classifyCreate(id, runtimeName, msg string) error {
	e := fmt.Errorf("%s create %s: %s", runtimeName, id, msg)
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "executable file not found"), strings.Contains(lower, "no such file or directory"),
		strings.Contains(lower, "permission denied") && strings.Contains(lower, "exec"):
		return errdefs.WithCategory(errdefs.ErrInvalid, e)
	default:
		return errdefs.WithCategory(errdefs.ErrUnavailable, e)
	}
}

// Start runs the created container's process. With runc it does what
// "runc start" does without starting runc: it opens the container's exec
// fifo, which releases the init process into the user's program, and
// removes it; other runtimes (and any surprise) go through the binary.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if _, err := r.loadMeta(id); err != nil {
		return err
	}
	if r.runtimeName == "runc" {
		done, err := startViaFifo(ctx, filepath.Join(r.stateDir, "runtime", id, "exec.fifo"))
		if done {
			return err
		}
	}
	if _, err := r.run(ctx, id, "start", id); err != nil {
		if st, serr := r.State(ctx, id); serr == nil && st.Status != runtime.StatusCreated {
			return errdefs.Conflict("start %s: the container is %s, not created", id, st.Status)
		}
		return err
	}
	return nil
}

// fifoStartTimeout bounds the wait for a created container's init process
// to be waiting on its exec fifo.
const fifoStartTimeout = 10 * time.Second

// startViaFifo releases a runc container created with "runc create": its
// init process blocks opening the fifo for writing until a reader opens
// it, then writes one byte and execs the user's program (the fifo closes
// on exec). done is false when the fifo is not there (not runc's layout,
// or already started), so the caller falls back to the runtime binary.
func startViaFifo(ctx context.Context, path string) (done bool, err error) {
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		return false, nil
	}
	type result struct {
		f   *os.File
		err error
	}
	opened := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		opened <- result{f, err}
	}()
	var f *os.File
	select {
	case res := <-opened:
		if res.err != nil {
			return true, errdefs.Unavailable("start: open exec fifo: %v", res.err)
		}
		f = res.f
	case <-time.After(fifoStartTimeout):
	case <-ctx.Done():
	}
	if f == nil {
		// Unblock our own open with a writer of our own, then give up.
		if w, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			if res := <-opened; res.f != nil {
				res.f.Close()
			}
			w.Close()
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return true, errdefs.Unavailable("start: the container's init process did not wait on its exec fifo within %s", fifoStartTimeout)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return true, errdefs.Unavailable("start: read exec fifo: %v", err)
	}
	if len(data) == 0 {
		return true, errdefs.Conflict("start: the container's init process is gone or already started")
	}
	os.Remove(path)
	return true, nil
}

// writeWithoutEnv writes config.json again with spec's process minus the
// variables hidden names: the runtime has read them already.
func writeWithoutEnv(bundle string, spec *specs.Spec, hidden []string) error {
	cp := *spec
	proc := *spec.Process
	proc.Env = nil
	for _, kv := range spec.Process.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(hidden, k) {
			proc.Env = append(proc.Env, kv)
		}
	}
	cp.Process = &proc
	config, err := json.Marshal(&cp)
	if err != nil {
		return errdefs.Invalid("encode spec: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(bundle, "config.json"), config, 0o600, false); err != nil {
		return errdefs.Unavailable("write config.json: %w", err)
	}
	return nil
}
