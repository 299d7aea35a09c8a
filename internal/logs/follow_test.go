package logs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/logs"
)

// wait bounds every wait for the follower in these tests.
const wait = 5 * time.Second

// logWriter appends records to a log and rotates it the ways a writer can.
type logWriter struct {
	t    *testing.T
	path string
	f    *os.File
}

func newLogWriter(t *testing.T, path string) *logWriter {
	return &logWriter{t: t, path: path}
}

func (w *logWriter) open() {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *logWriter) write(s string) {
	if w.f == nil {
		w.open()
	}
	if _, err := w.f.WriteString(s); err != nil {
		w.t.Fatal(err)
	}
}

// rotate renames the log to path.1 (replacing the old one) and starts a
// new file, the way skiff's runtime keeps one old file.
func (w *logWriter) rotate() {
	w.moveAway()
	w.open()
}

// moveAway renames the log to path.1 but keeps writing the renamed file
// until open is called.
func (w *logWriter) moveAway() {
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		w.t.Fatal(err)
	}
}

// replace puts a new empty file at the log's path by renaming a temporary
// file over it, the way conmon's --log-size-max does; the old file is lost
// to readers that do not have it open.
func (w *logWriter) replace() {
	w.f.Close()
	f, err := os.OpenFile(w.path+".tmp", os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(w.path+".tmp", w.path); err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *logWriter) close() {
	if w.f != nil {
		w.f.Close()
	}
}

// follower runs Read with Follow in the background.
type follower struct {
	t       *testing.T
	entries chan api.LogEntry
	done    chan struct{}
	result  chan error
	mu      sync.Mutex
	bad     []error
	seen    atomic.Int64
}

func startFollow(t *testing.T, ctx context.Context, path string, opts logs.Options) *follower {
	t.Helper()
	f := &follower{t: t, entries: make(chan api.LogEntry, 1<<16), done: make(chan struct{}), result: make(chan error, 1)}
	opts.Follow = true
	opts.Done = f.done
	opts.OnMalformed = func(err error) {
		f.mu.Lock()
		f.bad = append(f.bad, err)
		f.mu.Unlock()
	}
	go func() {
		f.result <- logs.Read(ctx, path, opts, func(e api.LogEntry) error {
			f.seen.Add(1)
			f.entries <- e
			return nil
		})
	}()
	return f
}

// expect waits for the next entries to be want, before anything tells the
// reader the writer is done: only following can deliver them.
func (f *follower) expect(want ...string) {
	f.t.Helper()
	var got []string
	timeout := time.After(wait)
	for len(got) < len(want) {
		select {
		case e := <-f.entries:
			got = append(got, e.Line)
		case err := <-f.result:
			f.t.Fatalf("Read returned %v while following; got %q, want %q", err, got, want)
		case <-timeout:
			f.t.Fatalf("follower got %q within %v, want %q", got, wait, want)
		}
	}
	assertLines(f.t, got, want)
}

// finish closes Done and returns what is still delivered and the skipped
// records.
func (f *follower) finish() ([]string, []error) {
	f.t.Helper()
	close(f.done)
	var err error
	select {
	case err = <-f.result:
	case <-time.After(wait):
		f.t.Fatalf("Read did not return within %v of Done", wait)
	}
	if err != nil {
		f.t.Fatalf("Read: %v", err)
	}
	var rest []string
	for len(f.entries) > 0 {
		rest = append(rest, (<-f.entries).Line)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return rest, f.bad
}

func TestFollow(t *testing.T) {
	tests := []struct {
		name    string
		current string // "" for no file
		rotated string // "" for no file
		opts    logs.Options
		run     func(w *logWriter, f *follower)
		rest    []string // delivered after Done
		bad     int
	}{
		{
			name: "appended lines", current: recs(0, 2), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 2)...)
				for i := 2; i < 6; i++ {
					w.write(rec(i))
					f.expect(lines(i, i+1)...)
				}
				w.write(recs(6, 10))
				f.expect(lines(6, 10)...)
			},
		},
		{
			name: "file created later", opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				w.write(rec(0))
				f.expect(lines(0, 1)...)
				w.write(rec(1))
				f.expect(lines(1, 2)...)
			},
		},
		{
			name: "tail then follow", current: recs(0, 10), opts: logs.Options{Tail: 2},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(8, 10)...)
				w.write(rec(10))
				f.expect(lines(10, 11)...)
			},
		},
		{
			name: "since filters new lines", current: recs(0, 3), opts: logs.Options{Tail: -1, Since: at(2)},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(2, 3)...)
				w.write(rec(1) + rec(3))
				f.expect(lines(3, 4)...)
			},
		},
		{
			name: "rotated file read first", current: recs(2, 4), rotated: recs(0, 2), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 4)...)
				w.write(rec(4))
				f.expect(lines(4, 5)...)
			},
		},
		{
			name: "rotation by rename", current: recs(0, 2), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 2)...)
				w.write(rec(2))
				w.rotate()
				w.write(rec(3))
				f.expect(lines(2, 4)...)
				w.rotate()
				w.write(rec(4))
				f.expect(lines(4, 5)...)
			},
		},
		{
			name: "two rotations while the reader waits", current: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 1)...)
				// The follower may wake for each step or once for all:
				// either way each line comes once, in order.
				w.write(rec(1))
				w.rotate()
				w.write(rec(2))
				w.rotate()
				w.write(rec(3))
				f.expect(lines(1, 4)...)
			},
		},
		{
			name: "replaced like conmon", current: recs(0, 2), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 2)...)
				w.write(rec(2))
				w.replace()
				w.write(rec(3))
				f.expect(lines(2, 4)...)
				w.replace()
				w.write(rec(4))
				f.expect(lines(4, 5)...)
			},
		},
		{
			name: "replaced with a rotated file present", current: recs(2, 3), rotated: recs(0, 2), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 3)...)
				w.write(rec(3))
				w.replace()
				w.write(rec(4))
				f.expect(lines(3, 5)...)
				w.replace()
				w.write(rec(5))
				f.expect(lines(5, 6)...)
				w.rotate()
				w.write(rec(6))
				f.expect(lines(6, 7)...)
				w.replace()
				w.write(rec(7))
				f.expect(lines(7, 8)...)
			},
		},
		{
			name: "written under the rotated name before a new file", current: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 1)...)
				w.moveAway()
				w.write(rec(1))
				f.expect(lines(1, 2)...)
				w.f.Close()
				w.open()
				w.write(rec(2))
				f.expect(lines(2, 3)...)
			},
		},
		{
			name: "started between rename and new file", rotated: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 1)...)
				w.write(rec(1))
				f.expect(lines(1, 2)...)
			},
		},
		{
			name: "record completed by a later write", current: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 1)...)
				r := rec(1)
				w.write(r[:20])
				w.write(r[20:])
				f.expect(lines(1, 2)...)
			},
		},
		{
			name: "unterminated record at Done is skipped", current: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 1)...)
				w.write(rec(1)[:20])
			},
			bad: 1,
		},
		{
			name: "unterminated record left by rotation is skipped", current: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				f.expect(lines(0, 1)...)
				w.write(rec(1)[:20])
				w.rotate()
				w.write(rec(2))
				f.expect(lines(2, 3)...)
			},
			bad: 1,
		},
		{
			name: "lines written just before Done", current: recs(0, 1), opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				w.write(rec(1))
			},
			rest: lines(0, 2),
		},
		{
			name: "malformed line while following", opts: logs.Options{Tail: -1},
			run: func(w *logWriter, f *follower) {
				w.write("junk\n" + rec(0))
				f.expect(lines(0, 1)...)
			},
			bad: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctr.log")
			if tt.rotated != "" {
				write(t, path+".1", tt.rotated)
			}
			if tt.current != "" {
				write(t, path, tt.current)
			}
			w := newLogWriter(t, path)
			if tt.current != "" {
				w.open()
			}
			defer w.close()
			f := startFollow(t, t.Context(), path, tt.opts)
			tt.run(w, f)
			rest, bad := f.finish()
			assertLines(t, rest, tt.rest)
			if len(bad) != tt.bad {
				t.Errorf("skipped %d records (%v), want %d", len(bad), bad, tt.bad)
			}
		})
	}
}

// TestFollowRotationRace writes and rotates as fast as it can while a
// follower reads, and checks that every line arrives once and in order.
// The writer only respects the retention contract: it does not delete a
// file (the second rotation of a file, or a replacement) before the
// follower has started reading it.
func TestFollowRotationRace(t *testing.T) {
	const (
		total = 20000
		every = 37 // lines per file
	)
	path := filepath.Join(t.TempDir(), "ctr.log")
	w := newLogWriter(t, path)
	defer w.close()
	f := startFollow(t, t.Context(), path, logs.Options{Tail: -1})

	// waitSeen waits until the follower has seen n lines.
	waitSeen := func(n int) {
		deadline := time.Now().Add(wait)
		for f.seen.Load() < int64(n) {
			if time.Now().After(deadline) {
				t.Fatalf("follower saw %d lines within %v, want %d", f.seen.Load(), wait, n)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	errc := make(chan error, 1)
	go func() {
		var got []string
		for len(got) < total {
			select {
			case e := <-f.entries:
				got = append(got, e.Line)
			case <-time.After(wait):
				errc <- fmt.Errorf("follower stalled after %d lines", len(got))
				return
			}
		}
		for i, l := range got {
			if want := fmt.Sprintf("line-%d", i); l != want {
				errc <- fmt.Errorf("line %d is %q, want %q", i, l, want)
				return
			}
		}
		errc <- nil
	}()

	// fileStart[k] is the first line of the k-th file.
	var fileStart []int
	rotations := 0
	for i := 0; i < total; i++ {
		if i%every == 0 {
			if i > 0 {
				k := len(fileStart) - 1 // the file at path now
				if rotations%2 == 0 {
					// rename: deletes file k-1, so it must have been read.
					if k > 0 {
						waitSeen(fileStart[k])
					}
					w.rotate()
				} else {
					// replace: deletes file k, so it must be open.
					waitSeen(fileStart[k] + 1)
					w.replace()
				}
				rotations++
			}
			fileStart = append(fileStart, i)
		}
		w.write(rec(i))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	rest, bad := f.finish()
	if len(rest) != 0 || len(bad) != 0 {
		t.Errorf("after all lines: extra %q, skipped %v", rest, bad)
	}
	t.Logf("%d lines over %d rotations", total, rotations)
}

// TestFollowTailZero checks that Tail 0 shows only what is written after
// Read looked at the file. A malformed record marks that moment: Tail
// skips it silently, following reports it.
func TestFollowTailZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	write(t, path+".1", recs(0, 5))
	write(t, path, recs(5, 10))
	w := newLogWriter(t, path)
	defer w.close()
	f := startFollow(t, t.Context(), path, logs.Options{Tail: 0})
	deadline := time.Now().Add(wait)
	for following := false; !following; {
		if time.Now().After(deadline) {
			t.Fatal("follower never reported a malformed record")
		}
		w.write("mark\n")
		time.Sleep(time.Millisecond)
		f.mu.Lock()
		following = len(f.bad) > 0
		f.mu.Unlock()
	}
	w.write(rec(10))
	f.expect(lines(10, 11)...)
	rest, _ := f.finish()
	assertLines(t, rest, nil)
}

func TestFollowEnds(t *testing.T) {
	tests := []struct {
		name string
		opts logs.Options
		// act ends the follow; nil leaves it to opts.
		act  func(cancel context.CancelFunc)
		want error
	}{
		{name: "until in the past returns after the history", opts: logs.Options{Tail: -1, Until: time.Now().Add(-time.Hour)}},
		{name: "until soon", opts: logs.Options{Tail: -1, Until: time.Now().Add(50 * time.Millisecond)}},
		{name: "cancel while waiting", opts: logs.Options{Tail: -1}, act: func(cancel context.CancelFunc) {
			time.Sleep(20 * time.Millisecond)
			cancel()
		}, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctr.log")
			write(t, path, recs(0, 2))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.act != nil {
				go tt.act(cancel)
			}
			opts := tt.opts
			opts.Follow = true
			result := make(chan error, 1)
			go func() {
				result <- logs.Read(ctx, path, opts, func(api.LogEntry) error { return nil })
			}()
			select {
			case err := <-result:
				if err != tt.want {
					t.Errorf("Read = %v, want %v", err, tt.want)
				}
			case <-time.After(wait):
				t.Fatalf("Read did not return within %v", wait)
			}
		})
	}
}

func TestFollowMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "ctr.log")
	err := logs.Read(t.Context(), path, logs.Options{Tail: -1, Follow: true}, func(api.LogEntry) error { return nil })
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Read = %v, want ErrNotFound", err)
	}
	// Without Follow it is an empty log.
	err = logs.Read(t.Context(), path, logs.Options{Tail: -1}, func(api.LogEntry) error {
		t.Error("entry from a missing log")
		return nil
	})
	if err != nil {
		t.Errorf("Read without Follow = %v, want nil", err)
	}
}

// TestFollowIgnoresOtherFiles checks that writes to other files in the
// directory do not make the follower read (it would find nothing new, so
// this shows through the watcher only): the follower's goroutine count and
// the absence of output are the observable part; mostly it must not break.
func TestFollowIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctr.log")
	f := startFollow(t, t.Context(), path, logs.Options{Tail: -1})
	write(t, filepath.Join(dir, "other.log"), recs(0, 3))
	write(t, filepath.Join(dir, "ctr.log.2"), recs(0, 3))
	w := newLogWriter(t, path)
	defer w.close()
	w.write(rec(7))
	f.expect(lines(7, 8)...)
	rest, bad := f.finish()
	if len(rest) != 0 || len(bad) != 0 {
		t.Errorf("extra %q, skipped %v", rest, bad)
	}
}

// TestFollowIdle: Idle is called once the follower has passed on what
// was written, before it waits (the moment a server flushes), and its
// error ends Read.
func TestFollowIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	w := newLogWriter(t, path)
	defer w.close()
	for i := range 3 {
		w.write(rec(i))
	}
	var seen, seenAtIdle int
	stop := errors.New("stop")
	err := logs.Read(t.Context(), path, logs.Options{Tail: -1, Follow: true,
		Idle: func() error {
			seenAtIdle = seen
			return stop
		}}, func(api.LogEntry) error {
		seen++
		return nil
	})
	if !errors.Is(err, stop) || seenAtIdle != 3 {
		t.Fatalf("Read: %v; Idle saw %d entries passed on, want 3", err, seenAtIdle)
	}
}
