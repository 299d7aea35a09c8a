package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRunMount checks --mount of each type: a read-only bind mount (read
// works, a write is refused), a bind mount with rshared propagation, a
// named volume filled from the image's /etc and one with volume-nocopy
// left empty, and a tmpfs with its size and mode.
func TestRunMount(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	vol, nocopy := "rf3-filled-"+strconv.Itoa(os.Getpid()), "rf3-nocopy-"+strconv.Itoa(os.Getpid())
	t.Cleanup(func() { skiff("volume", "rm", vol, nocopy) })
	script := "cat /data/hello; touch /data/x 2>/dev/null && echo wrote || echo refused; " +
		"grep ' /shared ' /proc/self/mountinfo | grep -c shared:; ls /etc | grep -c passwd; " +
		"df -k /scratch | tail -n 1; stat -c %a /scratch"
	out := must(t, env.daemon, "run", "--rm",
		"--mount", "type=bind,source="+dir+",target=/data,readonly",
		"--mount", "type=bind,src="+shared+",dst=/shared,bind-propagation=rshared",
		"--mount", "source="+vol+",target=/etc",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=4m,tmpfs-mode=0710",
		"busybox", "sh", "-c", script)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %q, want six lines", out)
	}
	if lines[0] != "from the host" || lines[1] != "refused" {
		t.Errorf("read-only bind mount: %q %q, want the host file's line and a refused write", lines[0], lines[1])
	}
	if lines[2] != "1" {
		t.Errorf("bind-propagation=rshared: /shared is not a shared mount (grep -c shared: printed %q)", lines[2])
	}
	if lines[3] != "1" {
		t.Errorf("a new named volume at /etc was not filled from the image: grep -c passwd printed %q", lines[3])
	}
	if f := strings.Fields(lines[4]); len(f) < 2 || f[1] != "4096" || lines[5] != "710" {
		t.Errorf("tmpfs with tmpfs-size=4m,tmpfs-mode=0710: %q %q", lines[4], lines[5])
	}
	out = must(t, env.daemon, "run", "--rm", "--mount", "type=volume,source="+nocopy+",target=/etc,volume-nocopy",
		"busybox", "sh", "-c", "ls -A /etc | wc -l")
	if strings.TrimSpace(out) != "0" {
		t.Errorf("a volume-nocopy volume at /etc holds %s entries, want 0", strings.TrimSpace(out))
	}
}

// TestRunFlags3Invalid checks that bad --mount, --security-opt,
// --device, --log-driver, --log-opt and -a values are refused with exit
// 125, naming what is wrong.
func TestRunFlags3Invalid(t *testing.T) {
	for _, tc := range []struct {
		args, wants []string
	}{
		{[]string{"--mount", "type=bind,source=/tmp,target=/t,colour=red"}, []string{"--mount", `key "colour"`}},
		{[]string{"--mount", "type=tmpfs,target=/t,volume-nocopy"}, []string{"--mount", "volume-nocopy is only for type=volume"}},
		{[]string{"--security-opt", "systempaths=unconfined"}, []string{"systempaths=unconfined", "not supported"}},
		{[]string{"--security-opt", "seccomp=/nonexistent/profile.json"}, []string{"seccomp=/nonexistent/profile.json", "no such file"}},
		{[]string{"--device", "/dev/fuse:rwx"}, []string{"--device", `"/dev/fuse:rwx"`}},
		{[]string{"--device", "/dev/null/nope"}, []string{"/dev/null/nope"}},
		{[]string{"--log-driver", "syslog"}, []string{"--log-driver", `"syslog"`}},
		{[]string{"--log-opt", "compress=true"}, []string{"--log-opt", `"compress"`}},
		{[]string{"-a", "stdwhat"}, []string{"--attach", `"stdwhat"`}},
		{[]string{"-a", "stdout", "-d"}, []string{"-a/--attach", "-d/--detach"}},
	} {
		r := fails(t, env.daemon, tc.wants, append(append([]string{"run", "--rm", "--name", "runflags3-bad"}, tc.args...), "busybox", "true")...)
		if r.Code != 125 {
			t.Errorf("%v: exit %d, want 125", tc.args, r.Code)
		}
	}
}

// TestRunSecurityOpt checks no-new-privileges (the NoNewPrivs line of
// /proc/self/status, on by default, off with =false) and a seccomp
// profile file that refuses keyctl but allows add_key, which the default
// profile refuses too; seccomp=unconfined allows both.
func TestRunSecurityOpt(t *testing.T) {
	nnp := func(args ...string) string {
		out := must(t, env.daemon, append(append([]string{"run", "--rm"}, args...), "busybox", "grep", "NoNewPrivs", "/proc/self/status")...)
		return strings.Join(strings.Fields(out), " ")
	}
	if got := nnp("--security-opt", "no-new-privileges"); got != "NoNewPrivs: 1" {
		t.Errorf("--security-opt no-new-privileges: %q, want NoNewPrivs: 1", got)
	}
	if got := nnp("--security-opt", "no-new-privileges=false"); got != "NoNewPrivs: 0" {
		t.Errorf("--security-opt no-new-privileges=false: %q, want NoNewPrivs: 0", got)
	}
	profile := filepath.Join(t.TempDir(), "no-keyctl.json")
	body := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`
	if err := os.WriteFile(profile, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := env.daemon.Run("", "run", "--rm", "--security-opt", "seccomp="+profile, "sysprobe", "keyctl", "add_key")
	if !strings.Contains(r.Stdout, "keyctl: refused: EPERM") || !strings.Contains(r.Stdout, "add_key: allowed") || !strings.Contains(r.Stdout, "Seccomp: 2") {
		t.Errorf("with a profile refusing keyctl only, want keyctl refused, add_key allowed and a filter on:\n%s", r)
	}
	r = env.daemon.Run("", "run", "--rm", "--security-opt", "seccomp=unconfined", "sysprobe", "keyctl", "add_key")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Seccomp: 0") {
		t.Errorf("seccomp=unconfined: want both calls allowed and no filter:\n%s", r)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_SOMETIMES"}`), 0o644)
	fails(t, env.daemon, []string{"seccomp profile"}, "run", "--rm", "--security-opt", "seccomp="+bad, "busybox", "true")
}

// TestRunDevice checks --device: /dev/fuse (not among a container's
// default devices) is absent without it, present as the same character
// device and openable with it, and a read-only mapping under another
// name refuses a write open.
func TestRunDevice(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("this test needs the host's /dev/fuse: %v", err)
	}
	out := must(t, env.daemon, "run", "--rm", "busybox", "sh", "-c", "test -e /dev/fuse && echo present || echo absent")
	if strings.TrimSpace(out) != "absent" {
		t.Errorf("without --device: /dev/fuse is %s", out)
	}
	out = must(t, env.daemon, "run", "--rm", "--device", "/dev/fuse", "busybox", "sh", "-c",
		"stat -c '%F %t,%T' /dev/fuse; exec 3<>/dev/fuse && echo opened")
	if got := strings.TrimSpace(out); got != "character special file a,e5\nopened" {
		t.Errorf("--device /dev/fuse: %q, want character device 10,229 (hex a,e5) opened read-write", got)
	}
	r := env.daemon.Run("", "run", "--rm", "--device", "/dev/fuse:/dev/myfuse:r", "busybox", "sh", "-c",
		"exec 3</dev/myfuse && echo read-ok; (exec 4>/dev/myfuse) 2>/dev/null && echo write-ok || echo write-refused")
	if !strings.Contains(r.Stdout, "read-ok") || !strings.Contains(r.Stdout, "write-refused") {
		t.Errorf("--device /dev/fuse:/dev/myfuse:r: want a read open and a refused write open:\n%s", r)
	}
}

// TestRunLogOpt checks --log-opt max-size and max-file: a container
// writing numbered lines slowly past the cap leaves its log and at most
// max-file-1 rotated files, each about the cap, and skiff logs returns
// the last lines in order without a gap; the first lines were dropped.
func TestRunLogOpt(t *testing.T) {
	name := "rf3-logopt"
	t.Cleanup(func() { skiff("rm", "-f", name) })
	// 120 lines of ~100 bytes, one each 10 ms: 12 KB through a 1 KiB cap.
	script := `i=1; while [ $i -le 120 ]; do printf 'line %03d %090d\n' $i 0; i=$((i+1)); sleep 0.01; done`
	must(t, env.daemon, "run", "--name", name, "--log-driver", "json-file", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
		"busybox", "sh", "-c", script)
	logPath := strings.TrimSpace(must(t, env.daemon, "inspect", "--format", "{{.LogPath}}", name))
	for _, suffix := range []string{"", ".1", ".2"} {
		st, err := os.Stat(logPath + suffix)
		if err != nil {
			t.Errorf("log file %s: %v", filepath.Base(logPath+suffix), err)
			continue
		}
		if st.Size() > 2048 {
			t.Errorf("log file %s is %d bytes, above the 1k cap", filepath.Base(logPath+suffix), st.Size())
		}
	}
	if _, err := os.Stat(logPath + ".3"); err == nil {
		t.Errorf("%s.3 exists: max-file=3 keeps the log and two rotated files", filepath.Base(logPath))
	}
	lines := strings.Split(strings.TrimSpace(must(t, env.daemon, "logs", name)), "\n")
	if len(lines) < 5 || len(lines) >= 120 {
		t.Fatalf("skiff logs returned %d lines, want the last few of 120", len(lines))
	}
	first := 120 - len(lines) + 1
	for i, l := range lines {
		if want := fmt.Sprintf("line %03d ", first+i); !strings.HasPrefix(l, want) {
			t.Fatalf("logs line %d = %.12q, want %q: the kept files are not read in order", i, l, want)
		}
	}
}

// TestRunAttachStreams checks -a: with -a stdout only the container's
// stdout reaches skiff's, with -a stderr only its stderr, and with
// neither stdout nor stderr attached skiff prints the container's ID as
// docker does; the exit code is the container's in each case.
func TestRunAttachStreams(t *testing.T) {
	script := "echo to-stdout; echo to-stderr >&2; exit 3"
	r := env.daemon.Run("", "run", "--rm", "-a", "stdout", "busybox", "sh", "-c", script)
	if r.Code != 3 || strings.TrimSpace(r.Stdout) != "to-stdout" || strings.Contains(r.Stderr, "to-stderr") {
		t.Errorf("-a stdout: want to-stdout alone on stdout, nothing on stderr, exit 3:\n%s", r)
	}
	r = env.daemon.Run("", "run", "--rm", "--attach", "stderr", "busybox", "sh", "-c", script)
	if r.Code != 3 || r.Stdout != "" || strings.TrimSpace(r.Stderr) != "to-stderr" {
		t.Errorf("-a stderr: want to-stderr alone on stderr, exit 3:\n%s", r)
	}
	r = env.daemon.Run("hello\n", "run", "--rm", "-i", "-a", "stdin", "busybox", "sh", "-c", "read l; echo got-$l; exit 4")
	if r.Code != 4 || len(strings.TrimSpace(r.Stdout)) != 64 || strings.Contains(r.Stdout, "got-") {
		t.Errorf("-i -a stdin: want the container ID alone on stdout and exit 4:\n%s", r)
	}
}

// TestDockerRunFlags3 checks the same flags through the Docker API:
// docker run --mount, --security-opt no-new-privileges, --device and
// --log-opt reach the container, docker inspect shows them, and the
// daemon's baseline admission profile refuses seccomp=unconfined.
func TestDockerRunFlags3(t *testing.T) {
	dockerDaemon(t)
	if err := os.WriteFile(filepath.Join(dockerEnv.share, "rf3"), []byte("shared file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := dockerOK(t, "run", "--name", "drf3", "--mount", "type=bind,source="+dockerEnv.share+",target=/share,readonly",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=2m", "--security-opt", "no-new-privileges=true",
		"--device", "/dev/fuse:/dev/fuse:rw", "--log-opt", "max-size=2k", "--log-opt", "max-file=4",
		"busybox", "sh", "-c", "cat /share/rf3; grep NoNewPrivs /proc/self/status; (exec 3<>/dev/fuse) && echo fuse-opened; df -k /scratch | tail -n 1")
	t.Cleanup(func() { docker(t, "", "rm", "-f", "drf3") })
	for _, want := range []string{"shared file", "fuse-opened", " 2048 "} {
		if !strings.Contains(out, want) {
			t.Errorf("docker run output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "NoNewPrivs: 1") {
		t.Errorf("no-new-privileges=true: NoNewPrivs is not 1:\n%s", out)
	}
	got := strings.TrimSpace(dockerOK(t, "inspect", "--format", "{{.HostConfig.SecurityOpt}} {{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-file\"}} {{(index .HostConfig.Devices 0).PathOnHost}}", "drf3"))
	if got != "[no-new-privileges=true] json-file 4 /dev/fuse" {
		t.Errorf("docker inspect: %q", got)
	}
	r := docker(t, "", "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "baseline/seccomp") {
		t.Errorf("seccomp=unconfined under the baseline profile: want a refusal naming baseline/seccomp:\n%s", r)
	}
	r = docker(t, "", "run", "--rm", "--log-driver", "syslog", "busybox", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "syslog") {
		t.Errorf("--log-driver syslog: want a refusal naming it:\n%s", r)
	}
}

// TestGuestbookFileDockerCompose129 checks that examples/guestbook's
// compose file, unchanged, is read by Debian's docker-compose 1.29 (whose
// schema knows neither a top-level name: nor healthcheck start_interval)
// and by skiff compose, which names the project guestbook after its
// directory. Bringing the guestbook up through docker-compose also needs
// the Docker API to carry healthchecks.
func TestGuestbookFileDockerCompose129(t *testing.T) {
	dir := filepath.Join(env.repo, "examples/guestbook")
	r := runTool(dir, []string{"DOCKER_HOST=unix:///nonexistent.sock"}, "", "docker-compose", "config")
	if r.Code != 0 || !strings.Contains(r.Stdout, "condition: service_healthy") || !strings.Contains(r.Stdout, "pgdata:") {
		t.Fatalf("docker-compose 1.29 config of examples/guestbook/compose.yaml: want it accepted whole:\n%s", r)
	}
	out := must(t, env.daemon, "compose", "-f", filepath.Join(dir, "compose.yaml"), "config")
	if !strings.Contains(out, "name: guestbook_pgdata") || strings.Contains(out, "unsupported") {
		t.Errorf("skiff compose config: want project guestbook (volume guestbook_pgdata) and no unsupported key:\n%s", out)
	}
}
