package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/daemon"
)

// TestHotRestart hands a daemon over to a new process on SIGHUP while
// requests flow through its ingress: the same binary twice, a newly built
// binary put at its path, a binary that fails at once and one that never
// becomes ready. No request may fail, the replicas must be adopted as
// they are, and a failed handover must leave the old daemon serving.
func TestHotRestart(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "skiff")
	copyFile(t, env.skiff, bin)
	d, err := startDaemonFrom("hotrestart", bin, "--upgrade-timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, d, helloApp("hot", "1", "  scale: {min: 2, max: 2}\n"))
	eventually(t, 30*time.Second, "hot to be ready", appReady(t, d, "hot"))
	addr := ingressAddr(t, d)
	before := replicaPIDs(t, d, "hot")

	t.Run("same binary twice", func(t *testing.T) {
		load := startLoad(addr, "hot.localhost", 6*time.Second)
		time.Sleep(time.Second)
		for range 2 {
			old := d.pid(t)
			syscall.Kill(old, syscall.SIGHUP)
			if pid := d.followHandover(t, old); pid == old {
				t.Fatalf("skiff.pid still names %d", old)
			}
			time.Sleep(time.Second)
		}
		load.check(t)
		checkAdopted(t, d, "hot", before)
		if !strings.Contains(must(t, d, "get", "apps"), "hot") {
			t.Fatal("the API does not list the App after the handover")
		}
	})

	t.Run("newly built binary", func(t *testing.T) {
		const version = "0.0.0-hotrestart"
		next := filepath.Join(filepath.Dir(bin), "skiff.next")
		cmd := exec.Command("go", "build", "-trimpath", "-o", next,
			"-ldflags", "-X skiff.dev/skiff/internal/cli.Version="+version, "./cmd/skiff")
		cmd.Dir, cmd.Env = env.repo, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		if strings.Contains(must(t, d, "version"), version) {
			t.Fatal("the daemon reports the new version before the upgrade")
		}
		if err := os.Rename(next, bin); err != nil { // replaces the running binary's file
			t.Fatal(err)
		}
		load := startLoad(addr, "hot.localhost", 4*time.Second)
		time.Sleep(time.Second)
		old := d.pid(t)
		out := must(t, d, "daemon", "--upgrade", "--root", d.Root)
		if !strings.Contains(out, "took over from pid "+strconv.Itoa(old)) {
			t.Fatalf("skiff daemon --upgrade: %q", out)
		}
		d.followHandover(t, old)
		load.check(t)
		if v := must(t, d, "version"); !strings.Contains(v, "Server:\n Version:     "+version) {
			t.Fatalf("the daemon does not run the new build:\n%s", v)
		}
		checkAdopted(t, d, "hot", before)
	})

	t.Run("binary that fails", func(t *testing.T) {
		good := filepath.Join(filepath.Dir(bin), "skiff.good")
		copyFile(t, bin, good)
		defer os.Rename(good, bin)
		writeScript(t, bin, "echo 'new build is broken' >&2\nexit 1\n")
		load := startLoad(addr, "hot.localhost", 3*time.Second)
		time.Sleep(500 * time.Millisecond)
		old := d.pid(t)
		r := fails(t, d, []string{"keeps serving", "exited before it was started: exit status 1"}, "daemon", "--upgrade", "--root", d.Root)
		_ = r
		load.check(t)
		stillServes(t, d, old, addr, "new build is broken")
		checkAdopted(t, d, "hot", before)
	})

	t.Run("binary that never becomes ready", func(t *testing.T) {
		good := filepath.Join(filepath.Dir(bin), "skiff.good")
		copyFile(t, bin, good)
		defer os.Rename(good, bin)
		// It says it started (so the old daemon lets go of the state
		// directory) and then hangs: the old one must take it back.
		writeScript(t, bin, `n=$(echo "$SKIFF_LISTEN_FDS" | tr , '\n' | wc -l)
eval "echo started >&$((n + 2))"
exec sleep 60
`)
		load := startLoad(addr, "hot.localhost", 9*time.Second)
		time.Sleep(500 * time.Millisecond)
		old := d.pid(t)
		fails(t, d, []string{"keeps serving", "was not ready within 5s"}, "daemon", "--upgrade", "--root", d.Root)
		load.check(t)
		stillServes(t, d, old, addr, "took the state directory back")
		checkAdopted(t, d, "hot", before)
		// The App is still managed: a new revision rolls out.
		applyYAML(t, d, helloApp("hot", "2", "  scale: {min: 2, max: 2}\n"))
		eventually(t, 30*time.Second, "revision 2 to serve", func() bool {
			_, body := get(t, addr, "hot.localhost", "/")
			return strings.Contains(body, "version 2")
		})
	})
	must(t, d, "delete", "app", "hot")
}

// startDaemonFrom starts a daemon as startDaemon does, running bin.
func startDaemonFrom(name, bin string, args ...string) (*Daemon, error) {
	d := &Daemon{
		Name:   name,
		Root:   filepath.Join(env.tmp, "root-"+name),
		Socket: filepath.Join(env.tmp, name+".sock"),
		Log:    filepath.Join(env.tmp, name+".log"),
		Args:   args,
	}
	saved := env.skiff
	env.skiff = bin
	defer func() { env.skiff = saved }()
	return d, d.Start()
}

// pid is the daemon process skiff.pid names.
func (d *Daemon) pid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.Root, daemon.PIDFile))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", daemon.PIDFile, err)
	}
	return pid
}

// followHandover waits until another process took over from old
// (skiff.pid names it and old has exited) and makes d's Stop and Kill
// signal it. It returns the new PID.
func (d *Daemon) followHandover(t *testing.T, old int) int {
	t.Helper()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if pid = d.pid(t); pid != old && alive(pid) && !alive(old) {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.Log)
			t.Fatalf("timed out after 30s waiting for a new daemon to take over: skiff.pid names %d (alive %v), the old daemon %d is alive: %v\ndaemon log tail:\n%s",
				pid, alive(pid), old, alive(old), lastLines(string(b), 40))
		}
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Process = p
	return pid
}

// stillServes checks that the daemon old kept serving after a failed
// upgrade, and that its log says why.
func stillServes(t *testing.T, d *Daemon, old int, addr, logged string) {
	t.Helper()
	if pid := d.pid(t); pid != old || !alive(old) {
		t.Fatalf("after a failed upgrade skiff.pid names %d (alive %v), want %d still running", pid, alive(old), old)
	}
	eventually(t, 10*time.Second, "the log to say "+logged, func() bool {
		b, _ := os.ReadFile(d.Log)
		return strings.Contains(string(b), logged) && strings.Contains(string(b), "upgrade failed; this daemon keeps serving")
	})
	if code, body := get(t, addr, "hot.localhost", "/"); code != 200 {
		t.Fatalf("the App after a failed upgrade: %d %s", code, body)
	}
	must(t, d, "get", "apps", "hot")
}

// replicaPIDs maps the App's running replica containers to their
// processes (prewarmed ones have none).
func replicaPIDs(t *testing.T, d *Daemon, app string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, r := range replicasOf(t, d, app) {
		if r.State == api.ReplicaRunning {
			pids[r.ContainerID] = inspect(t, d, r.ContainerID).State.Pid
		}
	}
	if len(pids) == 0 {
		t.Fatalf("%s has no replicas", app)
	}
	return pids
}

// checkAdopted checks that the App runs on the same containers, each
// with the same process.
func checkAdopted(t *testing.T, d *Daemon, app string, before map[string]int) {
	t.Helper()
	after := replicaPIDs(t, d, app)
	if len(after) != len(before) {
		t.Fatalf("replicas before the handover %v, after %v", before, after)
	}
	for id, pid := range after {
		if before[id] != pid {
			t.Fatalf("replica %s: pid %d before the handover, %d after (new or restarted)", id, before[id], pid)
		}
	}
}

// load is a bounded request loop through the ingress.
type load struct {
	wg          sync.WaitGroup
	ok, failed  atomic.Int64
	firstFailed atomic.Value
}

// startLoad sends requests for host through the ingress at addr from 4
// workers for dur; each request takes at least 5ms at the App, so some
// are always in flight.
func startLoad(addr, host string, dur time.Duration) *load {
	l := &load{}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	end := time.Now().Add(dur)
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < 100000 && time.Now().Before(end); i++ {
				req, _ := http.NewRequest("GET", "http://"+addr+"/?sleep=5ms", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || !strings.Contains(string(body), "hello from skiff") {
					l.fail(fmt.Sprintf("%d %q %v", resp.StatusCode, body, err))
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) fail(what string) {
	l.failed.Add(1)
	l.firstFailed.CompareAndSwap(nil, what)
}

// check waits for the loop's end and fails the test if a request failed.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.wg.Wait()
	t.Logf("%d requests, %d failed", l.ok.Load()+l.failed.Load(), l.failed.Load())
	if n := l.failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, n+l.ok.Load(), l.firstFailed.Load())
	}
	if l.ok.Load() < 100 {
		t.Fatalf("only %d requests were answered", l.ok.Load())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// writeScript replaces path with a shell script.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestSocketActivatedRestart runs the daemon on sockets the test holds,
// as systemd's socket activation does (LISTEN_FDS), and restarts it with
// SIGTERM under load: no connection may be refused, and the daemon must
// leave the API socket, which is not its own, in place.
func TestSocketActivatedRestart(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tl.Addr().String()
	uf, _ := ul.(*net.UnixListener).File()
	tf, _ := tl.(*net.TCPListener).File()
	ul.Close()
	tl.Close()
	defer uf.Close()
	defer tf.Close()
	d := &Daemon{Name: "sockact", Root: filepath.Join(env.tmp, "root-sockact"), Socket: sock, Log: filepath.Join(env.tmp, "sockact.log")}
	start := func() {
		t.Helper()
		logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" "$@"`, env.skiff,
			"daemon", "--root", d.Root, "--socket", sock, "--ingress-addr", addr)
		cmd.ExtraFiles = []*os.File{uf, tf}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
		d.cmd = cmd
		// The socket queues the call until the daemon serves.
		must(t, d, "version")
	}
	start()
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "hello"); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, d, helloApp("hot", "1", "  scale: {min: 2, max: 2}\n"))
	eventually(t, 30*time.Second, "hot to be ready", appReady(t, d, "hot"))
	eventually(t, 30*time.Second, "both replicas of hot to run", func() bool {
		return countState(replicasOf(t, d, "hot"), api.ReplicaRunning) == 2
	})
	if got := ingressAddr(t, d); got != addr {
		t.Fatalf("the ingress listens on %s, not on the socket passed (%s)", got, addr)
	}
	before := replicaPIDs(t, d, "hot")
	load := startLoad(addr, "hot.localhost", 5*time.Second)
	time.Sleep(time.Second)
	d.Stop()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the daemon removed the API socket systemd owns: %v", err)
	}
	start()
	load.check(t)
	checkAdopted(t, d, "hot", before)
	must(t, d, "delete", "app", "hot")
}
