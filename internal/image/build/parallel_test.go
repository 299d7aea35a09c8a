package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// TestBuildEvents checks the events of a multi-stage build: every step
// that starts ends once, names its stage and its place in it, and labels
// given to the build land in the image.
func TestBuildEvents(t *testing.T) {
	dir := copyCase(t, "multistage")
	var events []api.BuildEvent
	var lines bytes.Buffer
	img, err := Build(context.Background(), Options{
		ContextDir: dir, Progress: &lines,
		Events: func(ev api.BuildEvent) { events = append(events, ev) },
		Labels: map[string]string{"org.example.from": "cli"},
	}, testImages(t))
	if err != nil {
		t.Fatal(err)
	}
	started := map[int]api.BuildEvent{}
	ended := map[int]int{}
	next := map[string]int{} // stage → next index
	for _, ev := range events {
		switch ev.Kind {
		case api.BuildStepStarted:
			if _, dup := started[ev.Step]; dup || ev.Stage == "" || !ev.Multi {
				t.Errorf("bad start %+v", ev)
			}
			if ev.Index != next[ev.Stage]+1 {
				t.Errorf("stage %s: step %d/%d after %d", ev.Stage, ev.Index, ev.Total, next[ev.Stage])
			}
			next[ev.Stage] = ev.Index
			started[ev.Step] = ev
		case api.BuildStepDone:
			if s, ok := started[ev.Step]; !ok || s.Stage != ev.Stage || ev.Error != "" {
				t.Errorf("end %+v of a step that did not start or failed", ev)
			}
			ended[ev.Step]++
		}
	}
	if len(started) == 0 || len(started) != len(ended) {
		t.Errorf("%d steps started, %d ended: %+v", len(started), len(ended), events)
	}
	for n, c := range ended {
		if c != 1 {
			t.Errorf("step %d ended %d times", n, c)
		}
	}
	if next["build"] != 3 || next["extended"] != 2 || next["3"] != 7 || next["unused"] != 0 {
		t.Errorf("steps per stage %v, want build 3, extended 2, 3 7, unused none", next)
	}
	if last := events[len(events)-1]; last.Kind != api.BuildMessage || !strings.HasPrefix(last.Text, "--> sha256:") {
		t.Errorf("the last event is %+v, not the image ID", last)
	}
	if !strings.Contains(lines.String(), "[extended] STEP 2/2: COPY app.conf /extended.conf\n") {
		t.Errorf("Progress lacks the step lines:\n%s", lines.String())
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Labels["org.example.from"] != "cli" {
		t.Errorf("labels %v lack the build's label", cfg.Config.Labels)
	}
}

// stagesBase is a stage named base with busybox installed under /bin.
const stagesBase = "FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"

// TestBuildStagesInParallel checks independent stages run at the same
// time: each starts before the other ends.
func TestBuildStagesInParallel(t *testing.T) {
	img, out, _, err := runBuild(t, stagesBase+`FROM base AS a
RUN echo start-a; sleep 1; echo end-a; echo a > /a
FROM base AS b
RUN echo start-b; sleep 1; echo end-b; echo b > /b
FROM base
COPY --from=a /a /a
COPY --from=b /b /b
`, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	i := func(s string) int {
		n := strings.Index(out, s+"\n")
		if n < 0 {
			t.Fatalf("no %q in\n%s", s, out)
		}
		return n
	}
	if !(i("start-a") < i("end-b") && i("start-b") < i("end-a")) {
		t.Errorf("stages a and b did not run at the same time:\n%s", out)
	}
	if n := len(layerEntries(t, img)); n != 4 {
		t.Errorf("%d layers, want 4 (busybox, its links, /a, /b)", n)
	}
}

// TestBuildStageFailureCancels checks a failing stage stops a stage
// running beside it at once, with the failing step's error, and leaves
// nothing in the work directory.
func TestBuildStageFailureCancels(t *testing.T) {
	df := stagesBase + `FROM base AS slow
RUN echo slow-started; sleep 60
FROM base AS bad
RUN sleep 0.5; echo bad-output; exit 3
FROM base
COPY --from=slow /bin/busybox /x
COPY --from=bad /bin/busybox /y
`
	start := time.Now()
	_, out, work, err := runBuild(t, df, nil)
	if err == nil {
		t.Fatalf("the build succeeded:\n%s", out)
	}
	if !strings.Contains(err.Error(), "exited with code 3") || !strings.Contains(err.Error(), "bad-output") {
		t.Errorf("error %v, want the failing step's", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the build took %s: the slow stage was not stopped", d)
	}
	if !strings.Contains(out, "slow-started") {
		t.Errorf("the slow stage never ran beside the failing one:\n%s", out)
	}
	if ents, _ := os.ReadDir(work); len(ents) > 0 {
		t.Errorf("the build left %v in its work directory", ents)
	}
}

// TestStepEvents checks the progress entry points: a step ends when the
// next one of its stage starts, on stepDone (with its error, "canceled"
// for a build another stage stopped) or on cached.
func TestStepEvents(t *testing.T) {
	var got []string
	b := &builder{opts: Options{Events: func(ev api.BuildEvent) {
		got = append(got, fmt.Sprintf("%s %d %s %d/%d %q cached=%v err=%q", ev.Kind, ev.Step, ev.Stage, ev.Index, ev.Total, ev.Text, ev.Cached, ev.Error))
	}}}
	s := &stage{def: &stageDef{name: "build"}}
	b.step(s, 1, 3, "FROM scratch AS build")
	b.output(s, "hi")
	b.step(s, 2, 3, "COPY a /a")
	b.stepCached(s)
	b.step(s, 3, 3, "RUN x")
	b.stepDone(s, context.Canceled)
	b.stepDone(s, nil) // no step running: nothing
	b.warn("w")
	want := []string{
		`step 1 build 1/3 "FROM scratch AS build" cached=false err=""`,
		`output 1 build 0/0 "hi" cached=false err=""`,
		`done 1 build 0/0 "" cached=false err=""`,
		`step 2 build 2/3 "COPY a /a" cached=false err=""`,
		`done 2 build 0/0 "" cached=true err=""`,
		`step 3 build 3/3 "RUN x" cached=false err=""`,
		`done 3 build 0/0 "" cached=false err="canceled"`,
		`warning 0  0/0 "w" cached=false err=""`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
