package e2e

import (
	"strings"
	"testing"
)

// TestRunShmGroupTmpfs checks --shm-size (the size df reports for
// /dev/shm), --group-add by name and by number (id -G), and --tmpfs with
// a size and a mode, against the defaults of a container without them.
func TestRunShmGroupTmpfs(t *testing.T) {
	script := "df -k /dev/shm | tail -n 1; id -G; df -k /scratch | tail -n 1; stat -c %a /scratch; touch /scratch/f && echo written"
	out := must(t, env.daemon, "run", "--rm", "--shm-size", "128m", "--group-add", "staff", "--group-add", "4242",
		"--tmpfs", "/scratch:size=8m,mode=700", "busybox", "sh", "-c", script)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %q, want five lines", out)
	}
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "131072" {
		t.Errorf("/dev/shm with --shm-size 128m: %q, want 131072 1K-blocks", lines[0])
	}
	if lines[1] != "0 50 4242" {
		t.Errorf("id -G with --group-add staff --group-add 4242 printed %q, want 0 50 4242", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) < 2 || f[1] != "8192" {
		t.Errorf("/scratch with size=8m: %q, want 8192 1K-blocks", lines[2])
	}
	if lines[3] != "700" || lines[4] != "written" {
		t.Errorf("/scratch mode and write: %q %q, want 700 and written", lines[3], lines[4])
	}

	out = must(t, env.daemon, "run", "--rm", "busybox", "sh", "-c", "df -k /dev/shm | tail -n 1; id -G")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "65536" || len(lines) != 2 || lines[1] != "0" {
		t.Errorf("defaults: %q, want a 65536 KiB /dev/shm and group 0 alone", out)
	}
}

// TestRunShmGroupTmpfsInvalid checks that a bad --shm-size, an unknown
// group and a bad --tmpfs option are refused with exit 125, naming what
// is wrong.
func TestRunShmGroupTmpfsInvalid(t *testing.T) {
	for _, tc := range []struct {
		args, wants []string
	}{
		{[]string{"--shm-size", "lots"}, []string{`"lots"`, "--shm-size"}},
		{[]string{"--group-add", "ghosts"}, []string{`"ghosts"`, "/etc/group"}},
		{[]string{"--tmpfs", "/t:mode=rwx"}, []string{"--tmpfs", `mode "rwx"`}},
		{[]string{"--tmpfs", "/t:exec"}, []string{"--tmpfs", `option "exec"`}},
	} {
		r := fails(t, env.daemon, tc.wants, append(append([]string{"run", "--rm", "--name", "runflags2-bad"}, tc.args...), "busybox", "true")...)
		if r.Code != 125 {
			t.Errorf("%v: exit %d, want 125", tc.args, r.Code)
		}
	}
}

// TestDockerShmGroupTmpfs checks docker run --shm-size, --group-add and
// --tmpfs through the Docker API, and that docker inspect reports them.
func TestDockerShmGroupTmpfs(t *testing.T) {
	dockerDaemon(t)
	out := dockerOK(t, "run", "--name", "dshm", "--shm-size", "96m", "--group-add", "4242", "--tmpfs", "/scratch:size=4m,mode=750",
		"busybox", "sh", "-c", "df -k /dev/shm | tail -n 1; id -G; df -k /scratch | tail -n 1; stat -c %a /scratch")
	t.Cleanup(func() { docker(t, "", "rm", "-f", "dshm") })
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %q, want four lines", out)
	}
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "98304" {
		t.Errorf("/dev/shm with --shm-size 96m: %q, want 98304 1K-blocks", lines[0])
	}
	if lines[1] != "0 4242" {
		t.Errorf("id -G with --group-add 4242 printed %q, want 0 4242", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) < 2 || f[1] != "4096" || lines[3] != "750" {
		t.Errorf("/scratch with size=4m,mode=750: %q %q", lines[2], lines[3])
	}
	got := strings.TrimSpace(dockerOK(t, "inspect", "--format", "{{.HostConfig.ShmSize}} {{.HostConfig.GroupAdd}} {{.HostConfig.Tmpfs}}", "dshm"))
	if got != "100663296 [4242] map[/scratch:rw,size=4194304,mode=750]" {
		t.Errorf("docker inspect: %q", got)
	}
}

// TestExecGroupAdd checks that a process exec'd into a container started
// with --group-add has the added groups too, as the container's own
// process does.
func TestExecGroupAdd(t *testing.T) {
	must(t, env.daemon, "run", "-d", "--name", "runflags2-groups", "--group-add", "4242", "busybox", "sleep", "60")
	defer env.daemon.Run("", "rm", "-f", "runflags2-groups")
	if out := must(t, env.daemon, "exec", "runflags2-groups", "id", "-G"); strings.TrimSpace(out) != "0 4242" {
		t.Errorf("exec id -G printed %q, want 0 4242", out)
	}
}
