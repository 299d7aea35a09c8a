package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// buildProgress shows a build's events to a person: event is called for
// each (one call at a time), finish once the build ended.
type buildProgress interface {
	event(ev api.BuildEvent)
	finish(failed bool)
}

// progress modes of skiff image build --progress.
const (
	progressAuto  = "auto"
	progressPlain = "plain"
	progressTTY   = "tty"
)

// newBuildProgress returns the renderer --progress mode asks for on w:
// auto is tty when w is a terminal, plain otherwise.
func newBuildProgress(mode string, w io.Writer) (buildProgress, error) {
	if err := checkProgressMode(mode); err != nil {
		return nil, err
	}
	f, isFile := w.(*os.File)
	isTerm := isFile && term.IsTerminal(int(f.Fd()))
	if mode == progressPlain || (mode == progressAuto && !isTerm) {
		return &plainProgress{w: w}, nil
	}
	p := newTTYProgress(w, 80, time.Now)
	if isTerm {
		p.size = func() (int, int, error) { return term.GetSize(int(f.Fd())) }
	}
	p.startTicker(100 * time.Millisecond)
	return p, nil
}

// checkProgressMode refuses a --progress value that is not a mode.
func checkProgressMode(mode string) error {
	switch mode {
	case progressAuto, progressPlain, progressTTY:
		return nil
	}
	return errdefs.Invalid("--progress %q: use auto, plain or tty", mode)
}

// stepLabel is how a step names itself: "[build 2/4]", or "[2/4]" in a
// build of one stage.
func stepLabel(ev api.BuildEvent) string {
	if ev.Multi && ev.Stage != "" {
		return fmt.Sprintf("[%s %d/%d]", ev.Stage, ev.Index, ev.Total)
	}
	return fmt.Sprintf("[%d/%d]", ev.Index, ev.Total)
}

// seconds formats a duration as BuildKit does: "1.2s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// plainProgress prints every event as a line, for logs and CI: each
// line starts with the step's number, a step's end says how long it
// took.
//
//	#2 [build] STEP 2/3: RUN make
//	#2 cc -o app main.c
//	#2 DONE 1.2s
type plainProgress struct {
	w io.Writer
}

func (p *plainProgress) event(ev api.BuildEvent) {
	switch ev.Kind {
	case api.BuildStepStarted:
		fmt.Fprintf(p.w, "#%d %s\n", ev.Step, ev.Line())
	case api.BuildStepOutput:
		fmt.Fprintf(p.w, "#%d %s\n", ev.Step, ev.Text)
	case api.BuildStepDone:
		switch {
		case ev.Cached:
			fmt.Fprintf(p.w, "#%d CACHED\n", ev.Step)
		case ev.Error == "canceled":
			fmt.Fprintf(p.w, "#%d CANCELED %s\n", ev.Step, seconds(ev.Duration))
		case ev.Error != "":
			fmt.Fprintf(p.w, "#%d ERROR %s\n", ev.Step, seconds(ev.Duration))
		default:
			fmt.Fprintf(p.w, "#%d DONE %s\n", ev.Step, seconds(ev.Duration))
		}
	default:
		fmt.Fprintln(p.w, ev.Line())
	}
}

func (p *plainProgress) finish(bool) {}

// ttyTail is how many last lines of a running step the terminal shows.
const ttyTail = 6

// ttyProgress draws a build on a terminal as BuildKit's tty progress
// does: a step that ended is printed once, on one line with its
// duration (its output collapsed, or kept below it when it failed);
// below, redrawn in place, a header with the time so far and each
// running step with its time and last lines of output.
type ttyProgress struct {
	mu      sync.Mutex
	w       io.Writer
	width   int
	height  int                          // 0: unknown
	size    func() (w, h int, err error) // the terminal's size now, or nil
	now     func() time.Time
	start   time.Time
	running []*ttyStep // in the order they started
	drawn   int        // lines of the live area on the screen
	stop    chan struct{}
	stopped sync.WaitGroup
}

type ttyStep struct {
	num   int
	label string // "[build 2/4] RUN make"
	start time.Time
	tail  []string
}

func newTTYProgress(w io.Writer, width int, now func() time.Time) *ttyProgress {
	return &ttyProgress{w: w, width: width, now: now, start: now()}
}

// startTicker redraws the live area every d, for the running times.
func (p *ttyProgress) startTicker(d time.Duration) {
	p.stop = make(chan struct{})
	p.stopped.Add(1)
	go func() {
		defer p.stopped.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.mu.Lock()
				p.redraw(nil)
				p.mu.Unlock()
			case <-p.stop:
				return
			}
		}
	}()
}

func (p *ttyProgress) event(ev api.BuildEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Kind {
	case api.BuildStepStarted:
		p.running = append(p.running, &ttyStep{num: ev.Step, label: stepLabel(ev) + " " + ev.Text, start: p.now()})
		p.redraw(nil)
	case api.BuildStepOutput:
		if s := p.find(ev.Step); s != nil {
			s.tail = append(s.tail, ev.Text)
			if len(s.tail) > ttyTail {
				s.tail = s.tail[1:]
			}
		}
		if p.stop == nil { // else the ticker draws it: a chatty step costs no more
			p.redraw(nil)
		}
	case api.BuildStepDone:
		p.done(ev)
	default:
		p.redraw([]string{ev.Line()})
	}
}

func (p *ttyProgress) find(num int) *ttyStep {
	for _, s := range p.running {
		if s.num == num {
			return s
		}
	}
	return nil
}

// done prints a step that ended above the live area.
func (p *ttyProgress) done(ev api.BuildEvent) {
	s := p.find(ev.Step)
	if s == nil {
		return
	}
	for i, r := range p.running {
		if r == s {
			p.running = append(p.running[:i], p.running[i+1:]...)
			break
		}
	}
	var lines []string
	switch {
	case ev.Cached:
		lines = append(lines, p.fit("=> CACHED "+s.label, ""))
	case ev.Error == "canceled":
		lines = append(lines, p.fit("=> CANCELED "+s.label, seconds(ev.Duration)))
	case ev.Error != "":
		lines = append(lines, p.fit("=> ERROR "+s.label, seconds(ev.Duration)))
		for _, l := range s.tail {
			lines = append(lines, p.fit("=> => # "+l, ""))
		}
	default:
		lines = append(lines, p.fit("=> "+s.label, seconds(ev.Duration)))
	}
	p.redraw(lines)
}

// redraw clears the live area, prints lines for good, and draws the
// live area again.
func (p *ttyProgress) redraw(lines []string) {
	if p.size != nil { // follow the window's size
		if w, h, err := p.size(); err == nil && w > 0 && h > 0 {
			p.width, p.height = w, h
		}
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", p.drawn)
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	p.drawn = 0
	if p.stop != nil || len(p.running) > 0 {
		live := p.live()
		for _, l := range live {
			b.WriteString(l + "\n")
		}
		p.drawn = len(live)
	}
	io.WriteString(p.w, b.String())
}

// live returns the lines of the live area, which fit in the terminal's
// height (the cursor cannot move up past its top): fewer last lines per
// step when many run, and the steps that do not fit counted.
func (p *ttyProgress) live() []string {
	now := p.now()
	out := []string{p.fit("[+] Building "+seconds(now.Sub(p.start)), "")}
	steps, tail := p.running, ttyTail
	if room := p.height - 2; p.height > 0 {
		if len(steps) > room {
			steps = steps[:max(room-1, 0)]
		}
		tail = max(min(tail, room/max(len(steps), 1)-1), 0)
	}
	for _, s := range steps {
		out = append(out, p.fit("=> "+s.label, seconds(now.Sub(s.start))))
		for _, l := range s.tail[max(len(s.tail)-tail, 0):] {
			out = append(out, p.fit("=> => # "+l, ""))
		}
	}
	if n := len(p.running) - len(steps); n > 0 {
		out = append(out, p.fit(fmt.Sprintf("=> and %d more running", n), ""))
	}
	return out
}

// fit makes a line of left and right (right-aligned) that does not wrap
// on a terminal p.width wide: the cursor moves count on it.
func (p *ttyProgress) fit(left, right string) string {
	left = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, left)
	room := p.width - 1
	if right != "" {
		room -= utf8.RuneCountInString(right) + 1
	}
	if n := utf8.RuneCountInString(left); n > room {
		r := []rune(left)
		left = string(r[:max(room, 0)])
	}
	if right == "" {
		return left
	}
	return left + strings.Repeat(" ", max(room-utf8.RuneCountInString(left), 0)+1) + right
}

// finish stops the redraws and replaces the live area by the build's
// total time.
func (p *ttyProgress) finish(failed bool) {
	if p.stop != nil {
		close(p.stop)
		p.stopped.Wait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop = nil
	word := "Built"
	if failed {
		word = "Build failed"
	}
	p.running = nil
	p.redraw([]string{fmt.Sprintf("[+] %s in %s", word, seconds(p.now().Sub(p.start)))})
}
