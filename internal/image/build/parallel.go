package build

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"skiff.dev/skiff/api"
)

// buildStages builds the stages in reach, each as soon as the stages it
// is FROM or copies from are built, at most parallelism() at a time. The
// first failure cancels the other stages, and is what it returns once
// every stage has stopped.
func (b *builder) buildStages(ctx context.Context, reach map[int]bool) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b.slots = make(chan struct{}, parallelism())
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, s := range b.stages {
		if !reach[s.def.index] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.build(ctx, s); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	return first
}

// parallelism bounds the stages that build at once: one per CPU the Go
// runtime uses, and at least two, so that a stage waiting on a RUN step
// does not hold up an independent one on a small machine.
func parallelism() int { return max(runtime.GOMAXPROCS(0), 2) }

// build builds stage s once, whoever asks first; later callers wait for
// that build and get its result. A stage only needs earlier stages, so
// this never waits on itself.
func (b *builder) build(ctx context.Context, s *stage) error {
	select {
	case <-s.finished:
		return s.err
	default:
	}
	s.once.Do(func() {
		s.err = b.buildStage(ctx, s)
		close(s.finished)
	})
	return s.err
}

// buildStage waits for the stages s needs, then takes a slot and runs s.
func (b *builder) buildStage(ctx context.Context, s *stage) error {
	if s.base != nil {
		if err := b.build(ctx, s.base); err != nil {
			return err
		}
	}
	for _, d := range s.deps {
		if err := b.build(ctx, b.stages[d]); err != nil {
			return err
		}
	}
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	b.step(s, 1, len(s.def.commands)+1, s.def.code)
	err := b.runStage(ctx, s)
	b.stepDone(s, err)
	return err
}

// need builds dep for the running stage (an ONBUILD trigger may copy from
// a stage the plan did not see), giving up the running stage's slot while
// it waits.
func (b *builder) need(ctx context.Context, dep *stage) error {
	select {
	case <-dep.finished:
		return dep.err
	default:
	}
	b.release()
	err := b.build(ctx, dep)
	if aerr := b.acquire(ctx); err == nil {
		err = aerr
	}
	return err
}

func (b *builder) acquire(ctx context.Context) error {
	if b.slots == nil {
		return nil
	}
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *builder) release() {
	select {
	case <-b.slots:
	default: // acquire failed on a cancelled build
	}
}

// lexer serializes the use of BuildKit's shell lexer, which keeps its
// state in itself, by stages building at the same time.
type lexer struct {
	mu sync.Mutex
	l  *shell.Lex
}

func (x *lexer) ProcessWord(word string, env shell.EnvGetter) (string, map[string]struct{}, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.l.ProcessWord(word, env)
}

func (x *lexer) ProcessWords(word string, env shell.EnvGetter) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.l.ProcessWords(word, env)
}

// stepRun is a step that started and has not ended.
type stepRun struct {
	num   int // api.BuildEvent.Step
	start time.Time
}

// emit passes an event to Options.Events and its line to
// Options.Progress.
func (b *builder) emit(ev api.BuildEvent) {
	b.emitMu.Lock()
	defer b.emitMu.Unlock()
	ev.Multi = b.multi
	if b.opts.Events != nil {
		b.opts.Events(ev)
	}
	if b.out != nil {
		if l := ev.Line(); l != "" {
			fmt.Fprintln(b.out, l)
		}
	}
}

// step reports that instruction i of total of stage s starts; the stage's
// previous step, if still running, ended successfully.
func (b *builder) step(s *stage, i, total int, text string) {
	b.stepDone(s, nil)
	b.emitMu.Lock()
	b.steps++
	s.cur = &stepRun{num: b.steps, start: time.Now()}
	b.emitMu.Unlock()
	b.emit(api.BuildEvent{Kind: api.BuildStepStarted, Step: s.cur.num, Stage: s.def.label(), Index: i, Total: total, Text: text})
}

// stepDone reports that the running step of s ended, with err if it
// failed (a build cancelled because another stage failed reads
// "canceled").
func (b *builder) stepDone(s *stage, err error) {
	if s.cur == nil {
		return
	}
	ev := api.BuildEvent{Kind: api.BuildStepDone, Step: s.cur.num, Stage: s.def.label(), Duration: time.Since(s.cur.start)}
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		ev.Error = "canceled"
	default:
		ev.Error = err.Error()
	}
	s.cur = nil
	b.emit(ev)
}

// stepCached reports that the running step of s was served from the
// layer cache; it ends the step.
func (b *builder) stepCached(s *stage) {
	if s.cur == nil {
		return
	}
	ev := api.BuildEvent{Kind: api.BuildStepDone, Step: s.cur.num, Stage: s.def.label(), Duration: time.Since(s.cur.start), Cached: true}
	s.cur = nil
	b.emit(ev)
}

// output reports a line the running step of s printed.
func (b *builder) output(s *stage, line string) {
	ev := api.BuildEvent{Kind: api.BuildStepOutput, Stage: s.def.label(), Text: line}
	if s.cur != nil {
		ev.Step = s.cur.num
	}
	b.emit(ev)
}
