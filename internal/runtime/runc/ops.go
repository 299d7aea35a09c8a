package runc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// Kill sends sig to the container's init process, or to all its
// processes.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	if _, err := r.loadMeta(id); err != nil {
		return err
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, id, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

// runtimeState is the JSON "<runtime> state" prints.
type runtimeState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
}

// State asks the runtime binary for the container's state.
func (r *Runtime) State(ctx context.Context, id string) (runtime.State, error) {
	if _, err := r.loadMeta(id); err != nil {
		return runtime.State{}, err
	}
	out, err := r.run(ctx, id, "state", id)
	if err != nil {
		return runtime.State{}, err
	}
	var st runtimeState
	if err := json.Unmarshal(out, &st); err != nil {
		return runtime.State{}, errdefs.Unavailable("parse %s state of %s: %w", r.runtimeName, id, err)
	}
	return runtime.State{ID: st.ID, Pid: st.Pid, Status: st.Status, Monitor: r.monitorAlive(id)}, nil
}

// Exited reports the exit status from conmon's exit file.
func (r *Runtime) Exited(ctx context.Context, id string) (runtime.ExitStatus, bool, error) {
	m, err := r.loadMeta(id)
	if err != nil {
		return runtime.ExitStatus{}, false, err
	}
	return r.exited(m)
}

func (r *Runtime) exited(m meta) (runtime.ExitStatus, bool, error) {
	f, err := os.Open(r.exitFile(m.ID))
	if errors.Is(err, fs.ErrNotExist) {
		return runtime.ExitStatus{}, false, nil
	}
	if err != nil {
		return runtime.ExitStatus{}, false, errdefs.Unavailable("read exit file of %s: %w", m.ID, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return runtime.ExitStatus{}, false, errdefs.Unavailable("stat exit file of %s: %w", m.ID, err)
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	code, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return runtime.ExitStatus{}, false, errdefs.Unavailable("exit file of %s holds %q, not an exit code", m.ID, b[:n])
	}
	return runtime.ExitStatus{Code: code, At: st.ModTime(), OOMKilled: r.oomKilled(m)}, true, nil
}

// oomKilled reports whether the OOM killer fired in the container's
// cgroup: conmon's "oom" file (written from its memory.oom_control or
// memory.events watch) or the cgroup's own counter, which stays readable
// until Delete removes the cgroup.
func (r *Runtime) oomKilled(m meta) bool {
	if _, err := os.Stat(filepath.Join(r.containerDir(m.ID), "oom")); err == nil {
		return true
	}
	if m.CgroupsPath == "" {
		return false
	}
	n, err := r.cg.OOMKills(m.CgroupsPath)
	return err == nil && n > 0
}

// Wait blocks until the container's exit file appears or ctx is done. If
// the container's conmon dies without writing an exit file (killed from
// outside), Wait returns ErrUnavailable: nothing will record the exit.
func (r *Runtime) Wait(ctx context.Context, id string) (runtime.ExitStatus, error) {
	m, err := r.loadMeta(id)
	if err != nil {
		return runtime.ExitStatus{}, err
	}
	var gone <-chan struct{}
	for {
		ch, cancel := r.w.subscribe(id)
		st, ok, err := r.exited(m)
		if err != nil || ok {
			cancel()
			return st, err
		}
		if gone == nil {
			var release func()
			gone, release = r.monitorGone(id)
			defer release()
		}
		select {
		case <-ch:
		case <-gone:
			cancel()
			// conmon writes the exit file before it exits.
			if st, ok, err := r.exited(m); err != nil || ok {
				return st, err
			}
			return runtime.ExitStatus{}, errdefs.Unavailable("the monitor (conmon) of container %s exited without recording the container's exit: delete the container", id)
		case <-ctx.Done():
			cancel()
			return runtime.ExitStatus{}, ctx.Err()
		}
		cancel()
	}
}

// Stats samples the container's cgroup.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	m, err := r.loadMeta(id)
	if err != nil {
		return runtime.Stats{}, err
	}
	if m.CgroupsPath == "" {
		return runtime.Stats{}, errdefs.NotFound("container %s has no cgroups path in its spec", id)
	}
	s, err := r.cg.Read(m.CgroupsPath)
	if err != nil {
		return runtime.Stats{}, err
	}
	return runtime.Stats{
		Time:             time.Now(),
		CPUUsageNanos:    s.CPUUsageNanos,
		MemoryUsageBytes: s.MemoryUsageBytes,
		MemoryLimitBytes: s.MemoryLimitBytes,
		Pids:             s.Pids,
		PidsLimit:        s.PidsLimit,
		OOMKills:         s.OOMKills,
	}, nil
}

// deleteWait bounds how long Delete waits for a killed container's exit
// and its monitor's end.
const deleteWait = 10 * time.Second

// Delete kills the container if it still runs, waits for conmon to record
// the exit, removes it from the runtime (which removes its cgroup) and
// removes the monitor's files.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	m, err := r.loadMeta(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		// Not ours, or already gone; still clear a runtime leftover.
		if _, serr := os.Stat(filepath.Join(r.stateDir, "runtime", id)); serr == nil {
			_, _ = r.run(ctx, id, "delete", "--force", id)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok, _ := r.exited(m); !ok {
		if _, err := r.run(ctx, id, "kill", "--all", id, "KILL"); err != nil && !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, deleteWait)
		_, err := r.Wait(wctx, id)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		// A monitor that died leaves no exit file; go on and clean up.
	}
	return r.cleanup(ctx, id, m.Bundle)
}

// cleanup removes every trace of id: the runtime's state (and cgroup),
// the conmon process if it lingers, and the monitor's files.
func (r *Runtime) cleanup(ctx context.Context, id, bundle string) error {
	var errs []error
	if _, err := os.Stat(filepath.Join(r.stateDir, "runtime", id)); err == nil && !r.deleteStopped(id) {
		if _, err := r.run(ctx, id, "delete", "--force", id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	cdir := r.containerDir(id)
	if pid, err := readPid(filepath.Join(cdir, "conmon.pid")); err == nil {
		if err := waitProcessGone(pid, deleteWait); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			_ = waitProcessGone(pid, time.Second)
		}
	}
	if m, err := r.loadMeta(id); err == nil && m.LogMaxSize > 0 {
		r.w.unwatchLog(m.LogPath)
		(&rotation{logPath: m.LogPath}).remove()
	}
	for _, f := range []string{"attach", "ctl", "winsz"} {
		if err := os.Remove(filepath.Join(bundle, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, p := range []string{filepath.Join(r.stateDir, "sock", id), r.exitFile(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(cdir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errdefs.Unavailable("delete %s: %w", id, errors.Join(errs...))
	}
	return nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// waitProcessGone waits, through a pidfd, until pid has exited.
func waitProcessGone(pid int, timeout time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("process %d still running after %s", pid, timeout)
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// Exec runs p in the container with "<runtime> exec --process". Fields p
// leaves empty take the container's values: Cwd, Env, Capabilities,
// Rlimits; NoNewPrivileges is kept if the container has it.
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, stdio runtime.ExecIO) (int, error) {
	m, err := r.loadMeta(id)
	if err != nil {
		return -1, err
	}
	if p == nil || len(p.Args) == 0 {
		return -1, errdefs.Invalid("exec in %s: no command given", id)
	}
	if _, ok, _ := r.exited(m); ok {
		return -1, errdefs.Conflict("exec in %s: the container is not running", id)
	}
	proc, err := r.execProcess(m, p)
	if err != nil {
		return -1, err
	}
	b, err := json.Marshal(proc)
	if err != nil {
		return -1, errdefs.Invalid("encode exec process: %w", err)
	}
	f, err := os.CreateTemp(r.containerDir(id), "exec-*.json")
	if err != nil {
		return -1, errdefs.Unavailable("write exec process: %w", err)
	}
	defer os.Remove(f.Name())
	logFile := strings.TrimSuffix(f.Name(), ".json") + ".log"
	defer os.Remove(logFile)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return -1, errdefs.Unavailable("write exec process: %w", err)
	}
	f.Close()

	pidFile := strings.TrimSuffix(f.Name(), ".json") + ".pid"
	defer os.Remove(pidFile)
	cmd := r.runtimeCmd(ctx, "--log", logFile, "--log-format", "json", "exec", "--pid-file", pidFile, "--process", f.Name(), id)
	// Cancelling ctx ends the process in the container too: killing the
	// runtime alone would leave it running there.
	cmd.Cancel = func() error {
		killExec(cmd.Process.Pid, pidFile)
		return nil
	}
	// A child the process left behind may hold its output open: the
	// exec ends anyway.
	cmd.WaitDelay = 2 * time.Second
	if proc.Terminal {
		err = runOnTerminal(cmd, proc.ConsoleSize, stdio)
	} else {
		err = runWithStdin(cmd, stdio)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the process exited 0; a child kept its output open
	}
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		return -1, errdefs.Unavailable("run %s exec: %w", r.runtimeName, err)
	}
	if msg := runtimeLogError(logFile); msg != "" {
		lower := strings.ToLower(msg)
		switch {
		case strings.Contains(lower, "executable file not found"), strings.Contains(lower, "no such file or directory"):
			return -1, errdefs.Invalid("exec in %s: %s", id, msg)
		case strings.Contains(lower, "stopped"), strings.Contains(lower, "not running"), strings.Contains(lower, "paused"):
			return -1, errdefs.Conflict("exec in %s: %s", id, msg)
		}
		return -1, errdefs.Unavailable("exec in %s: %s", id, msg)
	}
	return exitErr.ExitCode(), nil
}

// killExec sends SIGKILL to the runtime's exec process pid, to the
// process it started in the container (its pid in pidFile, once the
// runtime has written it) and to all their descendants: killing the
// runtime alone would leave the process, or a shell's child, running
// in the container.
func killExec(pid int, pidFile string) {
	roots := []int{pid}
	if b, err := os.ReadFile(pidFile); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 1 {
			roots = append(roots, p)
		}
	}
	// Stop the tree first so that no process forks or is reparented
	// while it is collected.
	tree, seen := []int{}, map[int]bool{}
	for _, r := range roots {
		if !seen[r] {
			seen[r] = true
			tree = append(tree, r)
		}
	}
	for i := 0; i < len(tree) && len(tree) < 4096; i++ {
		unix.Kill(tree[i], unix.SIGSTOP)
		for _, c := range childPids(tree[i]) {
			if !seen[c] {
				seen[c] = true
				tree = append(tree, c)
			}
		}
	}
	for _, p := range tree {
		unix.Kill(p, unix.SIGKILL)
	}
}

// childPids are the children of every thread of process pid.
func childPids(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil && c > 1 {
				out = append(out, c)
			}
		}
	}
	return out
}

// runWithStdin runs cmd with stdio, feeding stdio.Stdin through a pipe
// of its own: cmd ends when the process exits, also while the client
// keeps its stdin open (as docker exec -i clients do), where exec.Cmd
// would wait for the stdin copy to reach EOF. The copy then ends at the
// next read or when the caller closes its reader.
func runWithStdin(cmd *exec.Cmd, stdio runtime.ExecIO) error {
	cmd.Stdout, cmd.Stderr = stdio.Stdout, stdio.Stderr
	if stdio.Stdin == nil {
		return cmd.Run()
	}
	if f, ok := stdio.Stdin.(*os.File); ok {
		cmd.Stdin = f
		return cmd.Run()
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return errdefs.Unavailable("exec stdin pipe: %w", err)
	}
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pr.Close()
	go func() {
		io.Copy(pw, stdio.Stdin)
		pw.Close()
	}()
	err = cmd.Wait()
	pw.Close() // a copy still blocked in Read fails its next write
	return err
}

// execProcess fills p's empty fields from the container's process.
func (r *Runtime) execProcess(m meta, p *specs.Process) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(m.Bundle, "config.json"))
	if err != nil {
		return nil, errdefs.Unavailable("read the container's config.json: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, errdefs.Unavailable("parse the container's config.json: %w", err)
	}
	proc := *p
	if base := spec.Process; base != nil {
		if proc.Cwd == "" {
			proc.Cwd = base.Cwd
		}
		if len(proc.Env) == 0 {
			proc.Env = base.Env
		}
		if proc.Capabilities == nil {
			proc.Capabilities = base.Capabilities
		}
		if proc.Rlimits == nil {
			proc.Rlimits = base.Rlimits
		}
		proc.NoNewPrivileges = proc.NoNewPrivileges || base.NoNewPrivileges
		if proc.ApparmorProfile == "" {
			proc.ApparmorProfile = base.ApparmorProfile
		}
		if proc.SelinuxLabel == "" {
			proc.SelinuxLabel = base.SelinuxLabel
		}
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	return &proc, nil
}

// runtimeLogError returns the last error message in a runtime's JSON log.
func runtimeLogError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	msg := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			msg = entry.Msg
		}
	}
	return msg
}

// adopt resumes log rotation for the containers an earlier Runtime left.
func (r *Runtime) adopt() {
	entries, err := os.ReadDir(filepath.Join(r.stateDir, "containers"))
	if err != nil {
		return
	}
	for _, e := range entries {
		m, err := r.loadMeta(e.Name())
		if err != nil || m.LogMaxSize <= 0 {
			continue
		}
		if _, ok, _ := r.exited(m); ok {
			continue
		}
		rot := &rotation{logPath: m.LogPath, files: m.LogMaxFiles}
		if rot.sync() == nil {
			_ = r.w.watchLog(rot)
		}
	}
}
