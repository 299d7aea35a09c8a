package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/store"
)

// fakeRuntime is an in-memory runtime.Runtime whose containers exit when
// told to (exit) or when killed.
type fakeRuntime struct {
	mu        sync.Mutex
	ctrs      map[string]*fakeCtr
	createErr error
	starts    int
	deletes   int
	// exec, when set, answers Exec.
	exec func(ctx context.Context, id string, p *specs.Process, stdio runtime.ExecIO) (int, error)
}

type fakeCtr struct {
	status string
	// monitorDead: the container's monitor is gone (State says so).
	monitorDead bool
	pid         int
	exit        *runtime.ExitStatus
	done        chan struct{}
}

var _ runtime.Runtime = (*fakeRuntime)(nil)

func newFakeRuntime() *fakeRuntime { return &fakeRuntime{ctrs: map[string]*fakeCtr{}} }

func (f *fakeRuntime) Create(ctx context.Context, id string, spec *specs.Spec, opts runtime.CreateOpts) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return 0, f.createErr
	}
	if _, ok := f.ctrs[id]; ok {
		return 0, errdefs.Conflict("exists")
	}
	f.ctrs[id] = &fakeCtr{status: runtime.StatusCreated, pid: 1000 + len(f.ctrs), done: make(chan struct{})}
	return f.ctrs[id].pid, nil
}

func (f *fakeRuntime) Start(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return errdefs.NotFound("no %s", id)
	}
	c.status = runtime.StatusRunning
	f.starts++
	return nil
}

// exit makes a running container exit with code.
func (f *fakeRuntime) exit(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.ctrs[id]; ok && c.exit == nil {
		c.exit = &runtime.ExitStatus{Code: code, At: time.Now()}
		c.status = runtime.StatusStopped
		close(c.done)
	}
}

func (f *fakeRuntime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	f.mu.Lock()
	_, ok := f.ctrs[id]
	f.mu.Unlock()
	if !ok {
		return errdefs.NotFound("no %s", id)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		f.exit(id, 128+int(sig))
	}
	return nil
}

func (f *fakeRuntime) Wait(ctx context.Context, id string) (runtime.ExitStatus, error) {
	f.mu.Lock()
	c, ok := f.ctrs[id]
	f.mu.Unlock()
	if !ok {
		return runtime.ExitStatus{}, errdefs.NotFound("no %s", id)
	}
	select {
	case <-c.done:
		return *c.exit, nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
}

func (f *fakeRuntime) Exited(ctx context.Context, id string) (runtime.ExitStatus, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return runtime.ExitStatus{}, false, errdefs.NotFound("no %s", id)
	}
	if c.exit != nil {
		return *c.exit, true, nil
	}
	return runtime.ExitStatus{}, false, nil
}

func (f *fakeRuntime) State(ctx context.Context, id string) (runtime.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return runtime.State{}, errdefs.NotFound("no %s", id)
	}
	return runtime.State{ID: id, Pid: c.pid, Status: c.status, Monitor: !c.monitorDead}, nil
}

func (f *fakeRuntime) Exec(ctx context.Context, id string, p *specs.Process, stdio runtime.ExecIO) (int, error) {
	if f.exec != nil {
		return f.exec(ctx, id, p, stdio)
	}
	return 0, nil
}
func (f *fakeRuntime) Resize(ctx context.Context, id string, size specs.Box) error {
	return errdefs.Unavailable("the fake runtime has no terminal")
}
func (f *fakeRuntime) Attach(ctx context.Context, id string, stdin bool) (runtime.Attachment, error) {
	return nil, errdefs.Unavailable("the fake runtime has no stdio")
}
func (f *fakeRuntime) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	return runtime.Stats{}, nil
}

func (f *fakeRuntime) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.ctrs[id]; ok {
		if c.exit == nil {
			c.exit = &runtime.ExitStatus{Code: 137}
			close(c.done)
		}
		delete(f.ctrs, id)
		f.deletes++
	}
	return nil
}
func (f *fakeRuntime) Info(ctx context.Context) (runtime.Info, error) {
	return runtime.Info{Name: "fake"}, nil
}

type fakeImages struct{}

func (fakeImages) Resolve(ctx context.Context, ref string) (*Image, error) {
	if ref == "missing" {
		return nil, errdefs.NotFound("image %q not found", ref)
	}
	return &Image{Ref: "localhost/" + ref + ":latest", ID: "sha256:1234"}, nil
}

type fakeMounter struct{}

// Mount creates the directories, as the real mounter does.
func (fakeMounter) Mount(lowers []string, upper, work, target string) error {
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
func (fakeMounter) Unmount(target string) error { return nil }

type fakeSpecer struct{}

func (fakeSpecer) Spec(in SpecInput) (*specs.Spec, error) {
	args := append(append([]string{}, in.Config.Entrypoint...), in.Config.Cmd...)
	if len(args) == 0 {
		return nil, errdefs.Invalid("no command")
	}
	return &specs.Spec{Process: &specs.Process{Args: args}, Hostname: in.Hostname}, nil
}
func (fakeSpecer) Exec(spec *specs.Spec, rootfs string, req api.ExecRequest) (*specs.Process, error) {
	return &specs.Process{Args: req.Cmd}, nil
}

// The fake mounter never mounts, so isMountPoint says no and
// ensureMounted resolves and "mounts" again: harmless.

func newTestManager(t *testing.T, rt *fakeRuntime, dir string) *Manager {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Runtime: rt, RuntimeName: "fake", Images: fakeImages{}, Mounter: fakeMounter{},
		Specer: fakeSpecer{}, Store: db, Dir: filepath.Join(dir, "containers"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); db.Close() })
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func status(t *testing.T, m *Manager, name string) api.ContainerState {
	t.Helper()
	c, err := m.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

func TestCreateValidation(t *testing.T) {
	m := newTestManager(t, newFakeRuntime(), t.TempDir())
	ctx := context.Background()
	tests := []struct {
		name string
		req  api.ContainerCreateRequest
		want error
	}{
		{"ok", api.ContainerCreateRequest{Name: "ok", Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}}}, nil},
		{"missing image", api.ContainerCreateRequest{Config: api.ContainerConfig{Cmd: []string{"x"}}}, errdefs.ErrInvalid},
		{"unknown image", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "missing"}}, errdefs.ErrNotFound},
		{"bad name", api.ContainerCreateRequest{Name: "a b", Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}}}, errdefs.ErrInvalid},
		{"duplicate name", api.ContainerCreateRequest{Name: "ok", Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}}}, errdefs.ErrConflict},
		{"bad policy", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", RestartPolicy: api.RestartPolicy{Name: "maybe"}}}, errdefs.ErrInvalid},
		{"retries on always", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", RestartPolicy: api.RestartPolicy{Name: "always", MaxRetries: 2}}}, errdefs.ErrInvalid},
		{"rm with restart", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", AutoRemove: true, RestartPolicy: api.RestartPolicy{Name: "always"}}}, errdefs.ErrInvalid},
		{"tiny memory", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", Resources: api.Resources{MemoryBytes: 1024}}}, errdefs.ErrInvalid},
		{"negative pids", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", Resources: api.Resources{PidsLimit: -1}}}, errdefs.ErrInvalid},
		{"bad env", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", Env: []string{"=x"}}}, errdefs.ErrInvalid},
		{"bad stop signal", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", StopSignal: "SIGNOPE"}}, errdefs.ErrInvalid},
		{"no command", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img"}}, errdefs.ErrInvalid},
		{"negative shm", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, ShmSize: -1}}, errdefs.ErrInvalid},
		{"empty added group", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, GroupAdd: []string{""}}}, errdefs.ErrInvalid},
		{"tmpfs mode", api.ContainerCreateRequest{Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, Mounts: []api.Mount{{Type: api.MountTmpfs, Target: "/t", TmpfsMode: 0o10000}}}}, errdefs.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(m.List(ctx, true))
			_, err := m.Create(ctx, tc.req)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if after := len(m.List(ctx, true)); after != before {
				t.Fatalf("a refused create changed the container count")
			}
		})
	}
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		name      string
		policy    api.RestartPolicy
		codes     []int // exit codes of successive runs
		restarts  int
		endStatus string
	}{
		{"no", api.RestartPolicy{Name: "no"}, []int{1}, 0, api.StatusExited},
		{"on-failure clean exit", api.RestartPolicy{Name: "on-failure"}, []int{0}, 0, api.StatusExited},
		{"on-failure bounded", api.RestartPolicy{Name: "on-failure", MaxRetries: 2}, []int{1, 1, 1}, 2, api.StatusExited},
		{"on-failure recovers", api.RestartPolicy{Name: "on-failure"}, []int{1, 0}, 1, api.StatusExited},
		{"always", api.RestartPolicy{Name: "always"}, []int{0, 0, 0}, 3, api.StatusRunning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime()
			m := newTestManager(t, rt, t.TempDir())
			ctx := context.Background()
			c, err := m.Create(ctx, api.ContainerCreateRequest{Name: "c", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, RestartPolicy: tc.policy}})
			if err != nil {
				t.Fatal(err)
			}
			for i, code := range tc.codes {
				waitFor(t, fmt.Sprintf("run %d", i+1), func() bool {
					s := status(t, m, "c")
					return s.Status == api.StatusRunning && s.RestartCount == i
				})
				rt.exit(c.ID, code)
			}
			waitFor(t, "final state", func() bool {
				s := status(t, m, "c")
				return s.Status == tc.endStatus && s.RestartCount == tc.restarts
			})
			time.Sleep(300 * time.Millisecond) // no further restart
			if s := status(t, m, "c"); s.RestartCount != tc.restarts {
				t.Fatalf("restart count %d, want %d", s.RestartCount, tc.restarts)
			}
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	rt := newFakeRuntime()
	m := newTestManager(t, rt, t.TempDir())
	m.minBackoff, m.maxBackoff = 20*time.Millisecond, 80*time.Millisecond
	ctx := context.Background()
	c, err := m.Create(ctx, api.ContainerCreateRequest{Name: "c", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, RestartPolicy: api.RestartPolicy{Name: "always"}}})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.lookup("c")
	// The delay the manager schedules after each quick exit: doubling
	// from the minimum, then held at the cap.
	want := []time.Duration{20, 40, 80, 80, 80, 80}
	var gaps []time.Duration
	for i, w := range want {
		waitFor(t, "running", func() bool { s := status(t, m, "c"); return s.Status == api.StatusRunning && s.RestartCount == i })
		e.mu.Lock()
		delay := e.backoff
		e.mu.Unlock()
		if delay != w*time.Millisecond {
			t.Fatalf("restart %d: the manager would wait %v, want %v", i+1, delay, w*time.Millisecond)
		}
		exited := time.Now()
		rt.exit(c.ID, 1)
		waitFor(t, "restarted", func() bool { return status(t, m, "c").RestartCount == i+1 })
		gaps = append(gaps, time.Since(exited))
	}
	for i, g := range gaps {
		if g < want[i]*time.Millisecond {
			t.Fatalf("restart %d came %v after the exit, before its delay of %v (gaps %v)", i+1, g, want[i]*time.Millisecond, gaps)
		}
	}
}

func TestStopAndAutoRemove(t *testing.T) {
	rt := newFakeRuntime()
	m := newTestManager(t, rt, t.TempDir())
	ctx := context.Background()
	c, err := m.Create(ctx, api.ContainerCreateRequest{Name: "c", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, RestartPolicy: api.RestartPolicy{Name: "always"}}})
	if err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	if err := m.Stop(ctx, "c", &zero); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if s := status(t, m, "c"); s.Status != api.StatusExited || s.RestartCount != 0 {
		t.Fatalf("stopped container restarted: %+v", s)
	}
	if err := m.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("removed container still there: %v", err)
	}

	r, err := m.Create(ctx, api.ContainerCreateRequest{Name: "rm", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, AutoRemove: true}})
	if err != nil {
		t.Fatal(err)
	}
	rt.exit(r.ID, 0)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := m.Wait(wctx, r.ID, WaitRemoved); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "rm"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("auto-removed container still there")
	}
}

func TestRemoveRunningNeedsForce(t *testing.T) {
	rt := newFakeRuntime()
	m := newTestManager(t, rt, t.TempDir())
	ctx := context.Background()
	if _, err := m.Create(ctx, api.ContainerCreateRequest{Name: "c", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "c", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove of running: %v", err)
	}
	if err := m.Remove(ctx, "c", true); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailureIsRecorded(t *testing.T) {
	rt := newFakeRuntime()
	rt.createErr = errors.New(`exec: "nope": executable file not found in $PATH`)
	m := newTestManager(t, rt, t.TempDir())
	ctx := context.Background()
	_, err := m.Create(ctx, api.ContainerCreateRequest{Name: "c", Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"nope"}}})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("start of a missing command: %v", err)
	}
	if s := status(t, m, "c"); s.ExitCode != 127 || s.Error == "" || s.Status != api.StatusExited {
		t.Fatalf("state %+v", s)
	}
}

// TestRestoreAdoptsAndRecords simulates a daemon restart: one container
// still runs (adopted, not restarted), one exited meanwhile (recorded),
// one vanished (recorded as lost and restarted by its policy).
func TestRestoreAdoptsAndRecords(t *testing.T) {
	rt := newFakeRuntime()
	dir := t.TempDir()
	m := newTestManager(t, rt, dir)
	ctx := context.Background()
	mk := func(name string, p api.RestartPolicy) api.Container {
		c, err := m.Create(ctx, api.ContainerCreateRequest{Name: name, Start: true, Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}, RestartPolicy: p}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	running := mk("running", api.RestartPolicy{})
	exited := mk("exited", api.RestartPolicy{})
	lost := mk("lost", api.RestartPolicy{Name: "always"})
	m.Close() // the daemon goes away; containers stay in the runtime
	rt.exit(exited.ID, 4)
	rt.mu.Lock()
	delete(rt.ctrs, lost.ID)
	starts := rt.starts
	rt.mu.Unlock()

	m2 := newTestManager(t, rt, dir)
	if s := status(t, m2, "running"); s.Status != api.StatusRunning || s.Pid != running.State.Pid {
		t.Fatalf("running container not adopted: %+v", s)
	}
	waitFor(t, "exit recorded", func() bool { s := status(t, m2, "exited"); return s.Status == api.StatusExited && s.ExitCode == 4 })
	waitFor(t, "lost container restarted", func() bool { s := status(t, m2, "lost"); return s.Status == api.StatusRunning && s.RestartCount == 1 })
	rt.mu.Lock()
	if rt.starts != starts+1 {
		t.Fatalf("restore started %d containers, want only the lost one", rt.starts-starts)
	}
	rt.mu.Unlock()
	// The adopted one is watched: its exit is seen.
	rt.exit(running.ID, 0)
	waitFor(t, "adopted exit", func() bool { return status(t, m2, "running").Status == api.StatusExited })
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
		err  bool
	}{
		{"SIGTERM", syscall.SIGTERM, false}, {"term", syscall.SIGTERM, false}, {"9", syscall.SIGKILL, false},
		{"HUP", syscall.SIGHUP, false}, {"SIGNOPE", 0, true}, {"0", 0, true}, {"99", 0, true}, {"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSignal(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseSignal(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

// blockingSpecer stops in Spec, as reading a hostile image's files once
// did, until release is closed; then it fails or builds the spec.
type blockingSpecer struct {
	fakeSpecer
	entered chan struct{}
	release chan struct{}
	fail    bool
}

func (s blockingSpecer) Spec(in SpecInput) (*specs.Spec, error) {
	s.entered <- struct{}{}
	<-s.release
	if s.fail {
		return nil, errdefs.Invalid("/etc/passwd is a named pipe (FIFO), not a regular file")
	}
	return s.fakeSpecer.Spec(in)
}

// TestCreateHoldsNoImageLockWhilePreparing: a Create stuck preparing its
// container must not stop image removal (HoldImages) or other Creates,
// and its image stays in use until it is registered or has failed.
func TestCreateHoldsNoImageLockWhilePreparing(t *testing.T) {
	for _, fail := range []bool{false, true} {
		m := newTestManager(t, newFakeRuntime(), t.TempDir())
		sp := blockingSpecer{entered: make(chan struct{}, 1), release: make(chan struct{}), fail: fail}
		m.cfg.Specer = sp
		errc := make(chan error, 1)
		go func() {
			_, err := m.Create(context.Background(), api.ContainerCreateRequest{Name: "stuck", Config: api.ContainerConfig{Image: "img", Cmd: []string{"x"}}})
			errc <- err
		}()
		<-sp.entered
		held := make(chan func(), 1)
		go func() { held <- m.HoldImages() }()
		select {
		case release := <-held:
			if !m.ImageInUse("sha256:1234") {
				t.Error("the image of a container being created is not in use")
			}
			release()
		case <-time.After(5 * time.Second):
			t.Fatal("HoldImages waited for a Create that was reading its container's files")
		}
		close(sp.release)
		err := <-errc
		if fail {
			if err == nil {
				t.Fatal("the create did not fail")
			}
			if m.ImageInUse("sha256:1234") {
				t.Error("a failed create left its image in use")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !m.ImageInUse("sha256:1234") {
			t.Error("a created container's image is not in use")
		}
	}
}
