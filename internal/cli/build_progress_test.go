package cli

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// buildEvents is a two-stage build: a step with output that succeeds, a
// cached one, one that fails after printing, one cancelled.
func buildEvents() []api.BuildEvent {
	return []api.BuildEvent{
		{Kind: api.BuildStepStarted, Step: 1, Stage: "build", Index: 1, Total: 2, Text: "FROM busybox AS build", Multi: true},
		{Kind: api.BuildStepDone, Step: 1, Stage: "build", Duration: 20 * time.Millisecond, Multi: true},
		{Kind: api.BuildStepStarted, Step: 2, Stage: "build", Index: 2, Total: 2, Text: "RUN make", Multi: true},
		{Kind: api.BuildStepOutput, Step: 2, Stage: "build", Text: "cc -c main.c", Multi: true},
		{Kind: api.BuildStepStarted, Step: 3, Stage: "test", Index: 1, Total: 2, Text: "FROM busybox AS test", Multi: true},
		{Kind: api.BuildStepOutput, Step: 2, Stage: "build", Text: "cc -o app main.o", Multi: true},
		{Kind: api.BuildStepDone, Step: 3, Stage: "test", Cached: true, Multi: true},
		{Kind: api.BuildStepDone, Step: 2, Stage: "build", Duration: 1250 * time.Millisecond, Multi: true},
		{Kind: api.BuildWarning, Text: "build-args [X] were not consumed by any ARG"},
		{Kind: api.BuildStepStarted, Step: 4, Stage: "test", Index: 2, Total: 2, Text: "RUN ./check", Multi: true},
		{Kind: api.BuildStepStarted, Step: 5, Stage: "2", Index: 2, Total: 3, Text: "RUN sleep 9", Multi: true},
		{Kind: api.BuildStepOutput, Step: 4, Stage: "test", Text: "check: 1 failed", Multi: true},
		{Kind: api.BuildStepDone, Step: 4, Stage: "test", Duration: 300 * time.Millisecond, Error: "Dockerfile:5: the command exited with code 3", Multi: true},
		{Kind: api.BuildStepDone, Step: 5, Stage: "2", Duration: 310 * time.Millisecond, Error: "canceled", Multi: true},
	}
}

func TestPlainProgress(t *testing.T) {
	var out bytes.Buffer
	p := &plainProgress{w: &out}
	for _, ev := range buildEvents() {
		p.event(ev)
	}
	p.event(api.BuildEvent{Kind: api.BuildMessage, Text: "--> sha256:abc"})
	p.finish(true)
	want := `#1 [build] STEP 1/2: FROM busybox AS build
#1 DONE 0.0s
#2 [build] STEP 2/2: RUN make
#2 cc -c main.c
#3 [test] STEP 1/2: FROM busybox AS test
#2 cc -o app main.o
#3 CACHED
#2 DONE 1.2s
WARNING: build-args [X] were not consumed by any ARG
#4 [test] STEP 2/2: RUN ./check
#5 [2] STEP 2/3: RUN sleep 9
#4 check: 1 failed
#4 ERROR 0.3s
#5 CANCELED 0.3s
--> sha256:abc
`
	if out.String() != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", out.String(), want)
	}
}

// screen replays what a ttyProgress wrote: text lines, and "move up n
// lines, clear to the end" erasing the last n.
func screen(t *testing.T, out string) string {
	t.Helper()
	esc := regexp.MustCompile(`\x1b\[(\d+)A\x1b\[J`)
	var lines []string
	for len(out) > 0 {
		if m := esc.FindStringSubmatchIndex(out); m != nil && m[0] == 0 {
			n, _ := strconv.Atoi(out[m[2]:m[3]])
			if n > len(lines) {
				t.Fatalf("moves up %d lines of %d", n, len(lines))
			}
			lines = lines[:len(lines)-n]
			out = out[m[1]:]
			continue
		}
		line, rest, ok := strings.Cut(out, "\n")
		if !ok || strings.Contains(line, "\x1b") {
			t.Fatalf("a write that is not whole lines or a clear: %q", out)
		}
		lines = append(lines, line)
		out = rest
	}
	return strings.Join(lines, "\n") + "\n"
}

// fakeClock advances by step at each reading.
func fakeClock(step time.Duration) func() time.Time {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { now = now.Add(step); return now }
}

func TestTTYProgress(t *testing.T) {
	var out bytes.Buffer
	p := newTTYProgress(&out, 50, fakeClock(100*time.Millisecond))
	events := buildEvents()
	for _, ev := range events[:6] {
		p.event(ev)
	}
	// While the build runs: both running steps with their times, the
	// last lines of the one that printed.
	running := `=> [build 1/2] FROM busybox AS build         0.0s
[+] Building 0.8s
=> [build 2/2] RUN make                      0.5s
=> => # cc -c main.c
=> => # cc -o app main.o
=> [test 1/2] FROM busybox AS test           0.2s
`
	if got := screen(t, out.String()); got != running {
		t.Errorf("while running:\n%s\nwant:\n%s", got, running)
	}
	for _, ev := range events[6:] {
		p.event(ev)
	}
	p.finish(true)
	// At the end: one line per step, the output of the step that
	// succeeded collapsed, that of the step that failed kept.
	want := `=> [build 1/2] FROM busybox AS build         0.0s
=> CACHED [test 1/2] FROM busybox AS test
=> [build 2/2] RUN make                      1.2s
WARNING: build-args [X] were not consumed by any ARG
=> ERROR [test 2/2] RUN ./check              0.3s
=> => # check: 1 failed
=> CANCELED [2 2/3] RUN sleep 9              0.3s
[+] Build failed in 1.6s
`
	if got := screen(t, out.String()); got != want {
		t.Errorf("at the end:\n%s\nwant:\n%s", got, want)
	}
}

// TestTTYProgressFits checks long lines and control characters do not
// make the terminal wrap (which would break redrawing in place).
func TestTTYProgressFits(t *testing.T) {
	var out bytes.Buffer
	p := newTTYProgress(&out, 30, fakeClock(time.Second))
	p.event(api.BuildEvent{Kind: api.BuildStepStarted, Step: 1, Index: 1, Total: 1, Text: "RUN " + strings.Repeat("x", 100)})
	p.event(api.BuildEvent{Kind: api.BuildStepOutput, Step: 1, Text: "tab\there \x1b[31mred é" + strings.Repeat("y", 100)})
	for _, l := range strings.Split(strings.TrimSuffix(screen(t, out.String()), "\n"), "\n") {
		if n := len([]rune(l)); n >= 30 {
			t.Errorf("line of %d characters on a terminal 30 wide: %q", n, l)
		}
		if strings.ContainsAny(l, "\t\x1b") {
			t.Errorf("control character on screen: %q", l)
		}
	}
}

// TestTTYProgressFitsHeight checks the live area stays within a short
// terminal: fewer last lines per step, then the steps that do not fit
// counted.
func TestTTYProgressFitsHeight(t *testing.T) {
	var out bytes.Buffer
	p := newTTYProgress(&out, 40, fakeClock(time.Second))
	p.size = func() (int, int, error) { return 40, 8, nil }
	for i := 1; i <= 3; i++ {
		p.event(api.BuildEvent{Kind: api.BuildStepStarted, Step: i, Index: 1, Total: 1, Text: "RUN x"})
		for j := 0; j < 10; j++ {
			p.event(api.BuildEvent{Kind: api.BuildStepOutput, Step: i, Text: "line " + strconv.Itoa(j)})
		}
	}
	live := strings.Split(strings.TrimSuffix(screen(t, out.String()), "\n"), "\n")
	if len(live) > 7 || strings.Count(strings.Join(live, "\n"), "=> [1/1] RUN x") != 3 || live[len(live)-1] != "=> => # line 9" {
		t.Errorf("3 steps on a terminal 8 high:\n%s", strings.Join(live, "\n"))
	}
	for i := 4; i <= 9; i++ {
		p.event(api.BuildEvent{Kind: api.BuildStepStarted, Step: i, Index: 1, Total: 1, Text: "RUN y"})
	}
	live = strings.Split(strings.TrimSuffix(screen(t, out.String()), "\n"), "\n")
	if len(live) > 7 || live[len(live)-1] != "=> and 4 more running" {
		t.Errorf("9 steps on a terminal 8 high:\n%s", strings.Join(live, "\n"))
	}
}
