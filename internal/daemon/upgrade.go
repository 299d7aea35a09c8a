package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skiff.dev/skiff/internal/network/dns"
)

// The handover (SIGHUP): the running daemon starts the binary at its
// path as a new daemon and passes it the listening sockets (the API
// socket, the ingress listeners, the metrics listener and the DNS servers'
// sockets) and a pipe. The new daemon writes "started" on the pipe once
// it runs, and waits for the root. The old one then stops serving the
// API (calls wait on the socket's queue), stops its controllers without
// touching the containers, closes the store and lets go of the root. The
// new daemon takes the root, adopts the containers and routes, and once
// the replicas the old one routed to are routed again it accepts on the
// sockets and writes "ready". The old daemon then stops accepting,
// drains its requests in flight and exits. If the new daemon exits or is
// not ready in time, the old one kills it, takes the root back and keeps
// serving.
const (
	stageStarted = "started"
	stageReady   = "ready"

	// startTimeout bounds the wait for a new daemon to run at all.
	startTimeout = 15 * time.Second
	// apiDrainTimeout bounds the wait for API calls in flight (streams
	// such as logs -f are cut after it).
	apiDrainTimeout = 5 * time.Second
	// routeWait bounds how long a starting daemon waits for the replicas
	// it adopted to be routed before it accepts requests anyway.
	routeWait = 15 * time.Second
	// routeWaitFresh is routeWait for a daemon started afresh, which
	// waits for every running replica, ready or not before the stop.
	routeWaitFresh = 5 * time.Second
	// DefaultUpgradeTimeout bounds a handover from start to ready.
	DefaultUpgradeTimeout = time.Minute
)

// PIDFile is where the daemon writes its process ID, under its root, once
// it serves; the daemon that takes over on SIGHUP rewrites it.
const PIDFile = "skiff.pid"

// UpgradeStatusFile is where a daemon writes why its last handover
// failed, under its root ("failed: ..."), for `skiff daemon --upgrade`.
const UpgradeStatusFile = "skiff.upgrade"

// successor is a new daemon being started to take over.
type successor struct {
	cmd    *exec.Cmd
	stages chan string
	exited chan error
	dns    map[string]dns.Sockets // the DNS sockets passed, kept to take back
}

// upgrade hands the daemon over to a new process running the binary at
// its path. It reports whether the new one took over (this one must then
// drain and exit); an error means this daemon could not take the root
// back either and must exit.
func (d *Daemon) upgrade(ctx context.Context) (bool, error) {
	d.log.Info("upgrade: starting a new daemon to take over", "binary", d.exe)
	s, err := d.startSuccessor()
	if err != nil {
		d.upgradeFailed(err)
		return false, nil
	}
	if err := s.await(stageStarted, startTimeout); err != nil {
		s.kill()
		for _, ds := range s.dns {
			ds.Close()
		}
		d.upgradeFailed(err)
		return false, nil
	}
	d.log.Info("upgrade: the new daemon runs; handing over the state directory", "pid", s.cmd.Process.Pid)
	d.stopAPI()
	d.stopRegistry()
	d.closeState()
	d.lock.Close()
	d.lock = nil
	if err := s.await(stageReady, d.cfg.UpgradeTimeout); err != nil {
		s.kill()
		d.upgradeFailed(err)
		if err := d.takeBack(ctx, s.dns); err != nil {
			return false, fmt.Errorf("take the state directory back after a failed upgrade: %w", err)
		}
		return false, nil
	}
	for _, ds := range s.dns {
		ds.Close()
	}
	os.Remove(filepath.Join(d.cfg.Root, UpgradeStatusFile))
	d.log.Info("upgrade: the new daemon serves; draining requests in flight", "pid", s.cmd.Process.Pid)
	return true, nil
}

// upgradeFailed logs why a handover failed and records it for the CLI.
func (d *Daemon) upgradeFailed(err error) {
	d.log.Error("upgrade failed; this daemon keeps serving", "binary", d.exe, "err", err)
	os.WriteFile(filepath.Join(d.cfg.Root, UpgradeStatusFile), []byte("failed: "+err.Error()+"\n"), 0o644)
}

// takeBack makes this daemon whole again after a failed handover.
func (d *Daemon) takeBack(ctx context.Context, dnsSocks map[string]dns.Sockets) error {
	var err error
	if d.lock, err = lockRoot(d.cfg.Root, startTimeout); err != nil {
		return err
	}
	if err := d.openState(ctx, dnsSocks); err != nil {
		return err
	}
	if err := d.startRegistry(ctx); err != nil {
		return err
	}
	if err := d.startAPI(); err != nil {
		return err
	}
	d.log.Info("upgrade: this daemon took the state directory back and serves again")
	return nil
}

// startSuccessor starts the binary at the daemon's path with the same
// arguments, passing it the sockets.
func (d *Daemon) startSuccessor() (*successor, error) {
	dnsSocks, err := d.networks.DNSSockets()
	if err != nil {
		return nil, err
	}
	s := &successor{stages: make(chan string, 2), exited: make(chan error, 1), dns: dnsSocks}
	files, names := d.socks.handOver(dnsSocks)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	files, names = append(files, w), append(names, sockHandover)
	args := d.cfg.Args
	if args == nil {
		args = os.Args[1:]
	}
	s.cmd = exec.Command(d.exe, args...)
	s.cmd.Args[0] = os.Args[0]
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	s.cmd.ExtraFiles = files
	s.cmd.Env = append(childEnv(), envListenFDs+"="+strings.Join(names, ","), envRouted+"="+strings.Join(d.proxy.EndpointIDs(), ","))
	if d.socks.systemd {
		s.cmd.Env = append(s.cmd.Env, envListenSystemd+"=1")
	}
	err = s.cmd.Start()
	// Start put the sockets in blocking mode (os.File.Fd does), which
	// this process's servers share with the new one: undo it, or a read
	// or accept here would block in the kernel where no deadline and no
	// Close reach it.
	for _, f := range files[:len(files)-1] {
		if err := setNonblock(f); err != nil {
			d.log.Warn("upgrade: set a socket non-blocking again", "socket", f.Name(), "err", err)
		}
	}
	if err != nil {
		r.Close()
		for _, ds := range dnsSocks {
			ds.Close()
		}
		return nil, fmt.Errorf("start %s: %w", d.exe, err)
	}
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			s.stages <- sc.Text()
		}
		close(s.stages)
	}()
	go func() { s.exited <- s.cmd.Wait() }()
	return s, nil
}

// setNonblock puts f in non-blocking mode without f.Fd, which would
// undo it.
func setNonblock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), true) }); err != nil {
		return err
	}
	return serr
}

// childEnv is this process's environment without the variables that
// passed sockets to it.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case envListenFDs, envListenSystemd, envRouted, "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// await waits for the new daemon to report stage.
func (s *successor) await(stage string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case got, ok := <-s.stages:
			if !ok {
				// The pipe closed: the new daemon exited (or closed it).
				select {
				case err := <-s.exited:
					s.exited <- err
					if err == nil {
						err = errors.New("exit status 0")
					}
					return fmt.Errorf("the new daemon exited before it was %s: %v (its log above says why)", stage, err)
				case <-time.After(2 * time.Second):
					return fmt.Errorf("the new daemon closed its pipe before it was %s", stage)
				}
			}
			if got == stage {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("the new daemon was not %s within %s", stage, timeout)
		}
	}
}

// kill stops the new daemon and waits for it to exit.
func (s *successor) kill() {
	s.cmd.Process.Kill()
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(10 * time.Second):
	}
}

// report tells the daemon this one takes over from that it reached
// stage; a no-op for a daemon started afresh.
func (d *Daemon) report(stage string) error {
	if d.socks.handover == nil {
		return nil
	}
	if _, err := fmt.Fprintln(d.socks.handover, stage); err != nil {
		return fmt.Errorf("report to the daemon this one takes over from: %w", err)
	}
	if stage == stageReady {
		d.socks.handover.Close()
		d.socks.handover = nil
	}
	return nil
}

// writePID writes the process ID to ROOT/skiff.pid.
func (d *Daemon) writePID() {
	path := filepath.Join(d.cfg.Root, PIDFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err == nil {
		err = os.Rename(tmp, path)
		if err != nil {
			d.log.Warn("write the pid file", "path", path, "err", err)
		}
	}
}

// removePID removes ROOT/skiff.pid if it still names this process.
func (d *Daemon) removePID() {
	path := filepath.Join(d.cfg.Root, PIDFile)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}

// sdNotify tells systemd (Type=notify) that the daemon is ready and which
// process is now the main one; a no-op outside systemd.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	c, err := net.Dial("unixgram", addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

// executable is the path of the running binary, resolved at start: the
// file there may be replaced by a newer build before an upgrade.
func executable() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

// awaitPredecessor returns once the daemon this one took over from has
// exited (at once for a daemon started afresh), or when ctx ends. Until
// then that daemon's ingress drains its own requests, with the routes it
// had: a replica it may still send them to must not be stopped.
func (d *Daemon) awaitPredecessor(ctx context.Context) {
	if d.predecessor == 0 {
		return
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	// The predecessor is this process's parent until it exits.
	for os.Getppid() == d.predecessor {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
