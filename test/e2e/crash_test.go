package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// The crash tests kill a daemon with SIGKILL at the windows where a
// lifecycle step is half done, restart it, and check that the restart
// finished or undid the step: recorded state matching runc and conmon,
// containers that can be started, stopped and removed, and nothing left
// on the host. SKIFF_TEST_PAUSE (read by the daemon at start) stops the
// daemon at a named point so the kill lands there every time.

var crashDaemon *Daemon

// crashDaemonFor returns the daemon the crash tests share (with the
// busybox and hello images), started on first use.
func crashDaemonFor(t *testing.T) *Daemon {
	t.Helper()
	if crashDaemon == nil {
		d, err := startDaemon("crash")
		if err != nil {
			t.Fatal(err)
		}
		extraDaemons = append(extraDaemons, d)
		if err := buildSubset(d, "busybox", "hello"); err != nil {
			t.Fatal(err)
		}
		crashDaemon = d
	}
	return crashDaemon
}

// restartPaused kills d and starts it again, stopping at pause ("" for
// no pause).
func restartPaused(t *testing.T, d *Daemon, pause string) {
	t.Helper()
	d.Kill()
	if pause != "" {
		os.Setenv("SKIFF_TEST_PAUSE", pause)
		defer os.Unsetenv("SKIFF_TEST_PAUSE")
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
}

// pauses counts the times d's log says it paused for a test.
func pauses(t *testing.T, d *Daemon) int {
	b, err := os.ReadFile(d.Log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "paused for a test")
}

// runInBackground runs the CLI against d without waiting; its result is
// sent on the returned channel.
func runInBackground(d *Daemon, args ...string) <-chan Result {
	ch := make(chan Result, 1)
	go func() { ch <- d.Run("", args...) }()
	return ch
}

// killAtPause waits until d paused once more than before, then kills it
// and returns the id of the container it paused on.
func killAtPause(t *testing.T, d *Daemon, before int) string {
	t.Helper()
	eventually(t, 30*time.Second, "the daemon to pause", func() bool { return pauses(t, d) > before })
	b, _ := os.ReadFile(d.Log)
	lines := strings.Split(string(b), "\n")
	short := ""
	for _, l := range lines {
		if strings.Contains(l, "paused for a test") {
			_, short, _ = strings.Cut(l, " id=")
		}
	}
	d.Kill()
	ents, err := os.ReadDir(filepath.Join(d.Root, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if short != "" && strings.HasPrefix(e.Name(), strings.TrimSpace(short)) {
			return e.Name()
		}
	}
	t.Fatalf("no container directory for the paused container %q", short)
	return ""
}

// conmonPid returns the pid of the conmon of container id, 0 if none runs.
func conmonPid(id string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "\x00-c\x00"+id+"\x00") {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
		return pid
	}
	return 0
}

// noTraces fails unless nothing of container id is left on the host: no
// conmon, no mount, no runtime state, no directory.
func noTraces(t *testing.T, d *Daemon, id string) {
	t.Helper()
	eventually(t, 10*time.Second, "container "+id[:12]+" to leave nothing behind", func() bool {
		if conmonPid(id) != 0 {
			return false
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), id) {
			return false
		}
		for _, p := range []string{"runtime/runtime/" + id, "runtime/containers/" + id, "containers/" + id} {
			if _, err := os.Stat(filepath.Join(d.Root, p)); err == nil {
				return false
			}
		}
		return true
	})
}

// alive reports whether process pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z' && b[i+2] != 'X'
}

// timedRemove removes ref with rm -f and fails if that takes long.
func timedRemove(t *testing.T, d *Daemon, ref string) {
	t.Helper()
	start := time.Now()
	must(t, d, "rm", "-f", ref)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("rm -f %s took %s", ref, took)
	}
}

// netnsHasAddr reports whether the network namespace at path has an
// interface with address ip.
func netnsHasAddr(t *testing.T, path, ip string) bool {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+path, "ip", "-o", "-4", "addr").CombinedOutput()
	return err == nil && strings.Contains(string(out), " "+ip+"/")
}

// TestCrashBetweenCreateAndStart kills the daemon after runc create and
// before the container's process starts (with its conmon alive, and with
// it dead too): the restart undoes the start, the container is Created
// and starts for real (with its network), and rm -f is quick and leaves
// nothing.
func TestCrashBetweenCreateAndStart(t *testing.T) {
	d := crashDaemonFor(t)
	base := countNetObjects(t, d)
	for _, killConmon := range []bool{false, true} {
		t.Run(fmt.Sprintf("conmon killed %v", killConmon), func(t *testing.T) {
			restartPaused(t, d, "created")
			n := pauses(t, d)
			name := fmt.Sprintf("halfway-%v", killConmon)
			res := runInBackground(d, "run", "-d", "--name", name, "-p", "8080", "hello")
			id := killAtPause(t, d, n)
			if killConmon {
				pid := conmonPid(id)
				if pid == 0 {
					t.Fatal("the created container has no conmon")
				}
				syscall.Kill(pid, syscall.SIGKILL)
				eventually(t, 5*time.Second, "conmon to die", func() bool { return conmonPid(id) == 0 })
			}
			if r := <-res; r.Code == 0 {
				t.Fatalf("run -d succeeded though the daemon was killed: %s", r)
			}
			restartPaused(t, d, "")
			c := inspect(t, d, name)
			if c.State.Status != api.StatusCreated || !strings.Contains(c.State.Error, "start it again") {
				t.Fatalf("after the restart: %+v, want created with the reason", c.State)
			}
			if conmonPid(id) != 0 {
				t.Fatal("the undone start left its conmon running")
			}
			if got := countNetObjects(t, d); got != base {
				t.Fatalf("network objects of a created container: %+v, want %+v", got, base)
			}
			must(t, d, "start", name)
			c = inspect(t, d, name)
			if c.State.Status != api.StatusRunning || c.NetworkSettings == nil || c.NetworkSettings.IP == "" {
				t.Fatalf("after start: %+v %+v", c.State, c.NetworkSettings)
			}
			if !netnsHasAddr(t, c.NetworkSettings.NetNS, c.NetworkSettings.IP) {
				t.Fatalf("the started container lacks its address %s", c.NetworkSettings.IP)
			}
			out := must(t, d, "run", "--rm", "hello", "-get", "http://"+name+":8080/")
			if !strings.Contains(out, "hello from skiff") {
				t.Fatalf("the started container does not serve: %q", out)
			}
			timedRemove(t, d, name)
			noTraces(t, d, id)
			if got := countNetObjects(t, d); got != base {
				t.Fatalf("network objects after rm: %+v, want %+v", got, base)
			}
		})
	}
}

// TestCrashRunRm kills the daemon while run --rm starts its container:
// the restart removes it, with everything it had.
func TestCrashRunRm(t *testing.T) {
	d := crashDaemonFor(t)
	base := countNetObjects(t, d)
	restartPaused(t, d, "created")
	n := pauses(t, d)
	res := runInBackground(d, "run", "--rm", "--name", "gone-with-rm", "busybox", "echo", "hi")
	id := killAtPause(t, d, n)
	<-res
	restartPaused(t, d, "")
	if r := d.Run("", "inspect", "--type", "container", "gone-with-rm"); r.Code == 0 {
		t.Fatalf("the --rm container is still there after the restart: %s", r.Stdout)
	}
	noTraces(t, d, id)
	if got := countNetObjects(t, d); got != base {
		t.Fatalf("network objects: %+v, want %+v", got, base)
	}
}

// TestCrashCreatedWhileRunning kills the daemon after the process started
// and before the start was recorded: the restart records it running, and
// it is managed as such (exec, stop with its exit recorded).
func TestCrashCreatedWhileRunning(t *testing.T) {
	d := crashDaemonFor(t)
	base := countNetObjects(t, d)
	restartPaused(t, d, "started")
	n := pauses(t, d)
	res := runInBackground(d, "run", "-d", "--name", "unrecorded", "busybox", "sleep", "1000")
	id := killAtPause(t, d, n)
	<-res
	restartPaused(t, d, "")
	c := inspect(t, d, "unrecorded")
	if c.State.Status != api.StatusRunning || c.State.Pid == 0 {
		t.Fatalf("a running container recorded as %+v", c.State)
	}
	if c.NetworkSettings == nil || !netnsHasAddr(t, c.NetworkSettings.NetNS, c.NetworkSettings.IP) {
		t.Fatalf("the running container lost its network: %+v", c.NetworkSettings)
	}
	if out := must(t, d, "exec", "unrecorded", "echo", "inside"); out != "inside\n" {
		t.Fatalf("exec: %q", out)
	}
	must(t, d, "stop", "-t", "1", "unrecorded")
	if s := inspect(t, d, "unrecorded").State; s.Status != api.StatusExited {
		t.Fatalf("stop did not stop it: %+v", s)
	}
	if alive(c.State.Pid) {
		t.Fatalf("process %d still runs after stop", c.State.Pid)
	}
	timedRemove(t, d, "unrecorded")
	noTraces(t, d, id)
	if got := countNetObjects(t, d); got != base {
		t.Fatalf("network objects: %+v, want %+v", got, base)
	}
}

// TestCrashDuringStopGrace kills the daemon while a stop waits for a
// container that ignores SIGTERM: the restart kills it when the grace
// period ends.
func TestCrashDuringStopGrace(t *testing.T) {
	d := crashDaemonFor(t)
	restartPaused(t, d, "")
	must(t, d, "run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	pid := inspect(t, d, "stubborn").State.Pid
	res := runInBackground(d, "stop", "-t", "3", "stubborn")
	eventually(t, 5*time.Second, "the stop to begin", func() bool {
		return inspect(t, d, "stubborn").State.Status == api.StatusStopping
	})
	stopAt := time.Now()
	d.Kill()
	<-res
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the stop to end with SIGKILL", func() bool {
		s := inspect(t, d, "stubborn").State
		return s.Status == api.StatusExited && s.ExitCode == 137
	})
	if took := time.Since(stopAt); took < 2*time.Second {
		t.Fatalf("killed %s after the stop began, before its 3s grace period ended", took)
	}
	if alive(pid) {
		t.Fatalf("process %d still runs", pid)
	}
	id := inspect(t, d, "stubborn").ID
	timedRemove(t, d, "stubborn")
	noTraces(t, d, id)
}

// TestCrashPrewarmedKeepsNetwork restarts the daemon (SIGTERM, then
// SIGKILL) while an App has a prewarmed replica: the replica keeps its
// namespace, address and lease, and serves at once when needed.
func TestCrashPrewarmedKeepsNetwork(t *testing.T) {
	d := crashDaemonFor(t)
	restartPaused(t, d, "")
	base := countNetObjects(t, d)
	applyYAML(t, d, zeroApp("prewarmed", ", prewarm: 1"))
	eventually(t, 30*time.Second, "a prewarmed replica", func() bool {
		return countState(replicasOf(t, d, "prewarmed"), api.ReplicaPrewarmed) == 1 &&
			countState(replicasOf(t, d, "prewarmed"), api.ReplicaRunning, api.ReplicaStarting, api.ReplicaTerminating) == 0
	})
	var warm api.Replica
	for _, r := range replicasOf(t, d, "prewarmed") {
		warm = r
	}
	before := inspect(t, d, warm.ContainerID)
	if before.NetworkSettings == nil || before.NetworkSettings.IP == "" {
		t.Fatalf("prewarmed replica without network: %+v", before)
	}
	ip, ns := before.NetworkSettings.IP, before.NetworkSettings.NetNS
	withWarm := countNetObjects(t, d)
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		if how == "SIGTERM" {
			d.Stop()
		} else {
			d.Kill()
		}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		after := inspect(t, d, warm.ContainerID)
		if after.State.Status != api.StatusCreated || after.NetworkSettings == nil || after.NetworkSettings.IP != ip {
			t.Fatalf("after %s: prewarmed replica %+v %+v, want created with %s", how, after.State, after.NetworkSettings, ip)
		}
		if !netnsHasAddr(t, ns, ip) {
			t.Fatalf("after %s: the prewarmed replica's namespace lost %s", how, ip)
		}
		if got := countNetObjects(t, d); got != withWarm {
			t.Fatalf("after %s: network objects %+v, want %+v", how, got, withWarm)
		}
	}
	addr := ingressAddr(t, d)
	start := time.Now()
	if code, body := get(t, addr, "prewarmed.localhost", "/"); code != 200 {
		t.Fatalf("request to the prewarmed app: %d %s", code, body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the prewarmed replica took %s to serve", took)
	}
	used := false
	for _, r := range replicasOf(t, d, "prewarmed") {
		used = used || r.ContainerID == warm.ContainerID && r.State == api.ReplicaRunning
	}
	if !used {
		t.Fatalf("the prewarmed container did not serve: %+v", replicasOf(t, d, "prewarmed"))
	}
	must(t, d, "delete", "app", "prewarmed")
	eventually(t, 30*time.Second, "the app's replicas to go", func() bool {
		return len(strings.TrimSpace(must(t, d, "ps", "-aq"))) == 0
	})
	noTraces(t, d, warm.ContainerID)
	if got := countNetObjects(t, d); got != base {
		t.Fatalf("network objects after delete: %+v, want %+v", got, base)
	}
}

// TestCrashAfterApplyConverges kills the daemon while the replicas of a
// newly applied App are between create and start: the restart replaces
// them and the App serves what was applied.
func TestCrashAfterApplyConverges(t *testing.T) {
	d := crashDaemonFor(t)
	base := countNetObjects(t, d)
	restartPaused(t, d, "created")
	n := pauses(t, d)
	if r := applyYAML(t, d, helloApp("converge", "7", "  scale: {min: 2, max: 2}\n")); r.Code != 0 {
		t.Fatal(r)
	}
	killAtPause(t, d, n)
	restartPaused(t, d, "")
	eventually(t, 60*time.Second, "converge to be ready", appReady(t, d, "converge"))
	eventually(t, 30*time.Second, "two ready replicas, no other", func() bool {
		reps := replicasOf(t, d, "converge")
		ready := 0
		for _, r := range reps {
			if r.Ready && r.State == api.ReplicaRunning {
				ready++
			}
		}
		return ready == 2 && len(reps) == 2
	})
	addr := ingressAddr(t, d)
	for i := 0; i < 10; i++ {
		if code, body := get(t, addr, "converge.localhost", "/"); code != 200 || !strings.Contains(body, "version 7") {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	must(t, d, "delete", "app", "converge")
	eventually(t, 30*time.Second, "the app's replicas to go", func() bool {
		return len(strings.TrimSpace(must(t, d, "ps", "-aq"))) == 0
	})
	if got := countNetObjects(t, d); got != base {
		t.Fatalf("network objects after delete: %+v, want %+v", got, base)
	}
}

// matchesRuntime fails unless the recorded state of container name agrees
// with runc and conmon: running ones run under a live conmon; created
// ones have nothing in runc (or, prepared, a created container under a
// live conmon); exited ones have no conmon left.
func matchesRuntime(t *testing.T, d *Daemon, name string) api.Container {
	t.Helper()
	c := inspect(t, d, name)
	out, err := exec.Command("runc", "--root", filepath.Join(d.Root, "runtime", "runtime"), "state", c.ID).Output()
	runc := "absent"
	if err == nil {
		var st struct{ Status string }
		if json.Unmarshal(out, &st) == nil {
			runc = st.Status
		}
	}
	conmon := conmonPid(c.ID) != 0
	ok := false
	switch c.State.Status {
	case api.StatusRunning, api.StatusStopping:
		ok = runc == "running" && conmon
	case api.StatusCreated:
		ok = runc == "absent" && !conmon || runc == "created" && conmon
	case api.StatusExited, api.StatusRestarting:
		ok = !conmon
	}
	if !ok {
		t.Fatalf("container %s is recorded %s, but runc says %s and conmon runs: %v", name, c.State.Status, runc, conmon)
	}
	return c
}

// TestCrashRandomKillsDuringRun kills the daemon at random moments of
// run -d (most land in the runtime's create or between create and
// start) and checks each container afterwards.
func TestCrashRandomKillsDuringRun(t *testing.T) {
	d := crashDaemonFor(t)
	restartPaused(t, d, "")
	base := countNetObjects(t, d)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("random-kill-%d", i)
		delay := time.Duration(50+rng.IntN(550)) * time.Millisecond
		res := runInBackground(d, "run", "-d", "--name", name, "-p", "8080", "busybox", "sleep", "1000")
		time.Sleep(delay)
		restartPaused(t, d, "")
		<-res
		if r := d.Run("", "inspect", "--type", "container", name); r.Code != 0 {
			t.Logf("kill %d after %s: the container was never recorded", i, delay)
			continue
		}
		c := matchesRuntime(t, d, name)
		t.Logf("kill %d after %s: %s", i, delay, c.State.Status)
		if c.State.Status != api.StatusRunning {
			must(t, d, "start", name)
		}
		c = matchesRuntime(t, d, name)
		if c.State.Status != api.StatusRunning || c.NetworkSettings == nil || !netnsHasAddr(t, c.NetworkSettings.NetNS, c.NetworkSettings.IP) {
			t.Fatalf("kill %d: after start %+v %+v", i, c.State, c.NetworkSettings)
		}
		timedRemove(t, d, name)
		noTraces(t, d, c.ID)
	}
	if got := countNetObjects(t, d); got != base {
		t.Fatalf("network objects: %+v, want %+v", got, base)
	}
}

// TestCrashMonitorGone kills a running container's conmon: the daemon
// kills the container (nothing would record its exit), records the exit
// and removes it quickly.
func TestCrashMonitorGone(t *testing.T) {
	d := crashDaemonFor(t)
	restartPaused(t, d, "")
	must(t, d, "run", "-d", "--name", "orphaned", "busybox", "sleep", "1000")
	c := inspect(t, d, "orphaned")
	pid := conmonPid(c.ID)
	if pid == 0 {
		t.Fatal("no conmon for a running container")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, 10*time.Second, "the exit to be recorded", func() bool {
		s := inspect(t, d, "orphaned").State
		return s.Status == api.StatusExited && s.ExitCode == 137 && strings.Contains(s.Error, "conmon")
	})
	if alive(c.State.Pid) {
		t.Fatalf("process %d still runs without its conmon", c.State.Pid)
	}
	timedRemove(t, d, "orphaned")
	noTraces(t, d, c.ID)
}
