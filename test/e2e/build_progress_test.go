package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// inspectImage returns the image ref as `skiff image inspect` shows it.
func inspectImage(t *testing.T, ref string) api.Image {
	t.Helper()
	var imgs []api.Image
	if err := json.Unmarshal([]byte(must(t, env.daemon, "image", "inspect", ref)), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("image inspect %s: %v %v", ref, imgs, err)
	}
	return imgs[0]
}

// TestBuildProgressPlain checks --progress plain: every step and output
// line starts with the step's number, every step ends with its duration.
func TestBuildProgressPlain(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, "FROM busybox\nRUN echo out-one && echo out-two\nENV A=1\n")
	r := d.Run("", "image", "build", "--progress", "plain", "-t", "progress-plain", dir)
	if r.Code != 0 {
		t.Fatal(r)
	}
	for _, want := range []string{
		"#1 STEP 1/3: FROM busybox\n",
		"#2 STEP 2/3: RUN echo out-one && echo out-two\n",
		"#2 out-one\n#2 out-two\n",
		"#3 STEP 3/3: ENV A=1\n",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, r.Stderr)
		}
	}
	for i := 1; i <= 3; i++ {
		if !regexp.MustCompile(`(?m)^#` + string(rune('0'+i)) + ` DONE \d+\.\ds$`).MatchString(r.Stderr) {
			t.Errorf("step %d does not end with its duration:\n%s", i, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "\x1b[") {
		t.Errorf("plain progress holds terminal escapes:\n%q", r.Stderr)
	}
	if !strings.Contains(r.Stdout, "Successfully tagged localhost/progress-plain:latest") {
		t.Errorf("stdout: %s", r.Stdout)
	}
}

// TestBuildProgressTTY checks --progress tty draws steps with their
// durations, shows a running step's output and collapses it once the
// step succeeded.
func TestBuildProgressTTY(t *testing.T) {
	dir := writeBuildContext(t, "FROM busybox\nRUN echo tty-output; sleep 1\n")
	r := env.daemon.Run("", "image", "build", "--progress", "tty", "-t", "progress-tty", dir)
	if r.Code != 0 {
		t.Fatal(r)
	}
	final := replayTerminal(r.Stderr)
	if !strings.Contains(r.Stderr, "=> => # tty-output\n") {
		t.Errorf("the running step's output was never shown:\n%q", r.Stderr)
	}
	if !regexp.MustCompile(`(?m)^=> \[2/2\] RUN echo tty-output; sleep 1 +\d+\.\ds$`).MatchString(final) || !strings.Contains(r.Stderr, "\x1b[") ||
		!strings.Contains(final, "[+] Built in ") || strings.Contains(final, "=> # tty-output") {
		t.Errorf("tty progress, on screen at the end:\n%s\nwritten:\n%q", final, r.Stderr)
	}
}

// replayTerminal returns what the tty progress leaves on the screen: its
// lines, less those "move up n lines, clear to the end" erased.
func replayTerminal(out string) string {
	clear := regexp.MustCompile(`^\x1b\[(\d+)A\x1b\[J`)
	var lines []string
	for len(out) > 0 {
		if m := clear.FindStringSubmatch(out); m != nil {
			n, _ := strconv.Atoi(m[1])
			lines = lines[:max(len(lines)-n, 0)]
			out = out[len(m[0]):]
			continue
		}
		line, rest, _ := strings.Cut(out, "\n")
		lines = append(lines, line)
		out = rest
	}
	return strings.Join(lines, "\n")
}

// TestBuildQuietIIDFileLabelsTags checks -q prints only the image ID,
// --iidfile holds the same ID, --label lands in the image config and
// -t names the image several times.
func TestBuildQuietIIDFileLabelsTags(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, "FROM busybox\nLABEL from=dockerfile team=dockerfile\nRUN echo not-shown\n")
	iid := filepath.Join(t.TempDir(), "iid")
	r := d.Run("", "image", "build", "-q", "--iidfile", iid, "--label", "team=web", "--label", "org.example.note=a=b",
		"-t", "progress-quiet:1", "-t", "progress-quiet:latest", dir)
	if r.Code != 0 {
		t.Fatal(r)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(r.Stdout) || r.Stderr != "" {
		t.Errorf("-q printed more than the image ID: %s", r)
	}
	id := strings.TrimSpace(r.Stdout)
	if data, err := os.ReadFile(iid); err != nil || string(data) != id {
		t.Errorf("--iidfile holds %q (%v), want %q", data, err, id)
	}
	img := inspectImage(t, "progress-quiet:1")
	if img.ID != id {
		t.Errorf("image ID %s, -q printed %s", img.ID, id)
	}
	want := map[string]string{"from": "dockerfile", "team": "web", "org.example.note": "a=b"}
	for k, v := range want {
		if img.Config.Labels[k] != v {
			t.Errorf("labels %v, want %v", img.Config.Labels, want)
			break
		}
	}
	tags := slices.Sorted(slices.Values(img.Tags))
	if !slices.Equal(tags, []string{"localhost/progress-quiet:1", "localhost/progress-quiet:latest"}) {
		t.Errorf("tags %v", tags)
	}
	fails(t, d, []string{"=x", "KEY=VALUE"}, "image", "build", "--label", "=x", "-t", "x", dir)
	fails(t, d, []string{"--progress", "auto, plain or tty"}, "image", "build", "--progress", "fancy", "-t", "x", dir)
}

// TestBuildStagesRunInParallel checks two stages that do not need each
// other run at the same time: each one's RUN starts before the other's
// ends, and the build takes about one sleep, not two.
func TestBuildStagesRunInParallel(t *testing.T) {
	dir := writeBuildContext(t, `FROM busybox AS a
RUN echo start-a; sleep 2; echo end-a; echo a > /a
FROM busybox AS b
RUN echo start-b; sleep 2; echo end-b; echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
`)
	start := time.Now()
	r := env.daemon.Run("", "image", "build", "--progress", "plain", "-t", "progress-parallel", dir)
	took := time.Since(start)
	if r.Code != 0 {
		t.Fatal(r)
	}
	at := func(s string) int {
		i := regexp.MustCompile(`(?m)^#\d+ ` + s + `$`).FindStringIndex(r.Stderr)
		if i == nil {
			t.Fatalf("no %q in the progress:\n%s", s, r.Stderr)
		}
		return i[0]
	}
	if !(at("start-a") < at("end-b") && at("start-b") < at("end-a")) {
		t.Errorf("the stages ran one after the other (%s):\n%s", took, r.Stderr)
	}
	for _, s := range []string{"[a] STEP 2/2", "[b] STEP 2/2", "[2] STEP 3/3"} {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("progress does not name the stage: no %q in\n%s", s, r.Stderr)
		}
	}
	t.Logf("two stages sleeping 2 s each built in %s", took)
	if out := must(t, env.daemon, "run", "--rm", "progress-parallel", "cat", "/a", "/b"); out != "a\nb\n" {
		t.Errorf("the image holds %q", out)
	}
}

// TestBuildFailingStageStopsOthers checks a failing stage stops the stage
// running beside it: the build fails at once with the failing step's
// exit code and leaves no image, container, mount or directory.
func TestBuildFailingStageStopsOthers(t *testing.T) {
	d := env.daemon
	dir := writeBuildContext(t, `FROM busybox AS slow
RUN echo slow-started; sleep 60
FROM busybox AS bad
RUN sleep 1; echo bad-output; exit 5
FROM busybox
COPY --from=slow /bin/busybox /x
COPY --from=bad /bin/busybox /y
`)
	start := time.Now()
	r := fails(t, d, []string{"Dockerfile:4:", "exited with code 5", "bad-output"}, "image", "build", "--progress", "plain", "-t", "progress-fails", dir)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the build took %s: the slow stage was not stopped", took)
	}
	if !strings.Contains(r.Stderr, "slow-started") || !regexp.MustCompile(`(?m)^#\d+ ERROR \d+\.\ds$`).MatchString(r.Stderr) ||
		!regexp.MustCompile(`(?m)^#\d+ CANCELED \d+\.\ds$`).MatchString(r.Stderr) {
		t.Errorf("progress does not show the failed and the stopped step:\n%s", r.Stderr)
	}
	if r := d.Run("", "image", "inspect", "progress-fails"); r.Code == 0 {
		t.Errorf("a failed build left an image")
	}
	buildLeftovers(t, d)
}
