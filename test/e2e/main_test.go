package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// env is shared by all tests: binaries and one daemon with the test
// images loaded.
var env struct {
	repo   string // repository root
	tmp    string
	skiff  string // the skiff binary
	progs  string // directory of built test programs
	daemon *Daemon
}

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	if code == 0 {
		code = m.Run()
	}
	teardown()
	os.Exit(code)
}

func setup() (int, error) {
	if os.Geteuid() != 0 {
		return 1, fmt.Errorf("the end-to-end tests run containers and need root")
	}
	for _, bin := range []string{"runc", "conmon", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			return 1, fmt.Errorf("%s is not installed: run make deps-test", bin)
		}
	}
	wd, _ := os.Getwd()
	env.repo = filepath.Clean(filepath.Join(wd, "../.."))
	tmp, err := os.MkdirTemp("", "skiff-e2e-")
	if err != nil {
		return 1, err
	}
	env.tmp = tmp
	// Container root under a user namespace is an unprivileged host uid:
	// it must be able to search the directories down to its rootfs.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return 1, err
	}
	env.skiff = filepath.Join(tmp, "skiff")
	env.progs = filepath.Join(tmp, "progs")
	if err := goBuild(env.skiff, "./cmd/skiff"); err != nil {
		return 1, err
	}
	// The main daemon runs the privileged admission profile: the runtime
	// tests use --privileged, --network host, NET_RAW and host paths.
	// policy_test.go checks the default profile on daemons of its own.
	env.daemon, err = startDaemonWith("main", "--security-profile", "privileged")
	if err != nil {
		return 1, err
	}
	if err := buildImages(env.daemon); err != nil {
		return 1, err
	}
	return 0, nil
}

func teardown() {
	if env.daemon != nil {
		env.daemon.Cleanup()
	}
	for _, d := range extraDaemons {
		d.Cleanup()
	}
	if os.Getenv("SKIFF_E2E_KEEP") == "" {
		os.RemoveAll(env.tmp)
	} else {
		fmt.Println("kept", env.tmp)
	}
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = env.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Daemon is a skiff daemon run by the tests.
type Daemon struct {
	Name   string
	Root   string
	Socket string
	Log    string
	// Args are daemon flags beyond the root, socket and ingress address.
	Args []string
	cmd  *exec.Cmd
}

var extraDaemons []*Daemon

// startDaemon starts a daemon with its own root and socket under env.tmp.
func startDaemon(name string) (*Daemon, error) {
	d := &Daemon{
		Name:   name,
		Root:   filepath.Join(env.tmp, "root-"+name),
		Socket: filepath.Join(env.tmp, name+".sock"),
		Log:    filepath.Join(env.tmp, name+".log"),
	}
	return d, d.Start()
}

// Start (re)starts the daemon process and waits until it answers.
func (d *Daemon) Start() error {
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{"daemon", "--root", d.Root, "--socket", d.Socket, "--ingress-addr", "127.0.0.1:0"}, d.Args...)
	cmd := exec.Command(env.skiff, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(d.Log)
			return fmt.Errorf("daemon %s exited: %v\n%s", d.Name, err, b)
		default:
		}
		if out, err := exec.Command(env.skiff, "--socket", d.Socket, "version").CombinedOutput(); err == nil && strings.Contains(string(out), "Server:") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("daemon %s did not answer within 20s", d.Name)
}

// Kill sends SIGKILL to the daemon process (not its containers).
func (d *Daemon) Kill() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGKILL)
		for i := 0; i < 200 && syscall.Kill(d.cmd.Process.Pid, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Stop sends SIGTERM and waits for the daemon to exit.
func (d *Daemon) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		for i := 0; i < 500 && syscall.Kill(d.cmd.Process.Pid, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Cleanup removes all containers and stops the daemon.
func (d *Daemon) Cleanup() {
	if out, err := exec.Command(env.skiff, "--socket", d.Socket, "ps", "-aq").Output(); err == nil {
		ids := strings.Fields(string(out))
		if len(ids) > 0 {
			exec.Command(env.skiff, append([]string{"--socket", d.Socket, "rm", "-f"}, ids...)...).Run()
		}
	}
	d.Stop()
	// Anything left mounted under the root would make removal fail.
	exec.Command("sh", "-c", "grep -o ' "+d.Root+"[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l").Run()
}

// Result is the outcome of one CLI call.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// Run runs the skiff CLI against d, with a 2-minute bound.
func (d *Daemon) Run(stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.skiff, append([]string{"--socket", d.Socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// skiff runs the CLI against the shared daemon.
func skiff(args ...string) Result { return env.daemon.Run("", args...) }

// must runs the CLI and fails the test unless it exits 0.
func must(t *testing.T, d *Daemon, args ...string) string {
	t.Helper()
	r := d.Run("", args...)
	if r.Code != 0 {
		t.Fatalf("skiff %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// fails runs the CLI and fails the test unless it exits non-zero with a
// message containing every one of wants.
func fails(t *testing.T, d *Daemon, wants []string, args ...string) Result {
	t.Helper()
	r := d.Run("", args...)
	if r.Code == 0 {
		t.Fatalf("skiff %s succeeded, want failure: %s", strings.Join(args, " "), r)
	}
	for _, w := range wants {
		if !strings.Contains(r.Stderr, w) {
			t.Fatalf("skiff %s: error does not mention %q: %s", strings.Join(args, " "), w, r)
		}
	}
	return r
}

// eventually retries cond every 20ms until it holds or the limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", limit, what)
}
