package logs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/logs"
)

// t0 is the time of the first test record; record i is i seconds later.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// rec returns record i: a full stdout line "line-<i>" at t0+i seconds.
func rec(i int) string {
	return string(logs.AppendRecord(nil, api.LogEntry{Time: at(i), Stream: "stdout", Line: fmt.Sprintf("line-%d", i)}))
}

func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

// recs returns records from..to-1.
func recs(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(rec(i))
	}
	return b.String()
}

func lines(from, to int) []string {
	var l []string
	for i := from; i < to; i++ {
		l = append(l, fmt.Sprintf("line-%d", i))
	}
	return l
}

// collect reads the log at path and returns the lines and the skipped records.
func collect(t *testing.T, ctx context.Context, path string, opts logs.Options) ([]string, []error, error) {
	t.Helper()
	var got []string
	var bad []error
	opts.OnMalformed = func(err error) { bad = append(bad, err) }
	err := logs.Read(ctx, path, opts, func(e api.LogEntry) error {
		got = append(got, e.Line)
		return nil
	})
	return got, bad, err
}

func TestRead(t *testing.T) {
	all := logs.Options{Tail: -1}
	big := strings.Repeat("x", 100<<10)
	huge := strings.Repeat("y", 3<<20)
	tests := []struct {
		name    string
		current *string // nil: no file
		rotated *string // nil: no file
		opts    logs.Options
		want    []string
		bad     int // records skipped as malformed
	}{
		{name: "missing", opts: all},
		{name: "empty", current: ptr(""), opts: all},
		{name: "all", current: ptr(recs(0, 5)), opts: all, want: lines(0, 5)},
		{name: "tail", current: ptr(recs(0, 5)), opts: logs.Options{Tail: 2}, want: lines(3, 5)},
		{name: "tail zero", current: ptr(recs(0, 5)), opts: logs.Options{Tail: 0}},
		{name: "tail longer than log", current: ptr(recs(0, 5)), opts: logs.Options{Tail: 50}, want: lines(0, 5)},
		{name: "since", current: ptr(recs(0, 5)), opts: logs.Options{Tail: -1, Since: at(3)}, want: lines(3, 5)},
		{name: "until", current: ptr(recs(0, 5)), opts: logs.Options{Tail: -1, Until: at(3)}, want: lines(0, 3)},
		{name: "since and until", current: ptr(recs(0, 5)), opts: logs.Options{Tail: -1, Since: at(1), Until: at(4)}, want: lines(1, 4)},
		{name: "tail of until", current: ptr(recs(0, 10)), opts: logs.Options{Tail: 2, Until: at(5)}, want: lines(3, 5)},
		{name: "tail of since", current: ptr(recs(0, 10)), opts: logs.Options{Tail: 4, Since: at(8)}, want: lines(8, 10)},
		{name: "rotated read first", current: ptr(recs(3, 5)), rotated: ptr(recs(0, 3)), opts: all, want: lines(0, 5)},
		{name: "rotated only", rotated: ptr(recs(0, 3)), opts: all, want: lines(0, 3)},
		{name: "tail within current", current: ptr(recs(3, 6)), rotated: ptr(recs(0, 3)), opts: logs.Options{Tail: 2}, want: lines(4, 6)},
		{name: "tail spans rotation", current: ptr(recs(3, 6)), rotated: ptr(recs(0, 3)), opts: logs.Options{Tail: 5}, want: lines(1, 6)},
		{name: "tail exactly current", current: ptr(recs(3, 6)), rotated: ptr(recs(0, 3)), opts: logs.Options{Tail: 3}, want: lines(3, 6)},
		{name: "tail zero with rotation", current: ptr(recs(3, 6)), rotated: ptr(recs(0, 3)), opts: logs.Options{Tail: 0}},
		{name: "since in rotated", current: ptr(recs(3, 6)), rotated: ptr(recs(0, 3)), opts: logs.Options{Tail: -1, Since: at(2)}, want: lines(2, 6)},
		{
			name:    "malformed skipped and counted",
			current: ptr(rec(0) + "garbage\n" + rec(1) + "2026-11-25T12:00:00Z stdin F x\n\n" + rec(2)),
			opts:    all, want: lines(0, 3), bad: 3,
		},
		{
			name:    "tail skips malformed without counting them",
			current: ptr(rec(0) + rec(1) + "garbage\n" + rec(2)),
			opts:    logs.Options{Tail: 2}, want: lines(1, 3), bad: 1,
		},
		{name: "unterminated last record is not written yet", current: ptr(recs(0, 3) + strings.TrimSuffix(rec(3), "\n")), opts: all, want: lines(0, 3)},
		{name: "unterminated last record and tail", current: ptr(recs(0, 3) + "2026-11-25T12:00"), opts: logs.Options{Tail: 1}, want: lines(2, 3)},
		{
			name:    "unterminated end of rotated file",
			current: ptr(recs(2, 3)), rotated: ptr(recs(0, 2) + "2026-11-25T12:00"),
			opts: all, want: lines(0, 3), bad: 1,
		},
		{
			name:    "long record",
			current: ptr(rec(0) + "2026-11-25T12:00:00Z stdout F " + big + "\n" + rec(1)),
			opts:    all, want: append(append(lines(0, 1), big), lines(1, 2)...),
		},
		{
			name:    "over-long record skipped",
			current: ptr(rec(0) + "2026-11-25T12:00:00Z stdout F " + huge + "\n" + rec(1)),
			opts:    all, want: lines(0, 2), bad: 1,
		},
		{
			name:    "tail across over-long record",
			current: ptr(rec(0) + "2026-11-25T12:00:00Z stdout F " + huge + "\n" + rec(1)),
			opts:    logs.Options{Tail: 2}, want: lines(0, 2), bad: 1,
		},
		{name: "tail across long record", current: ptr(rec(0) + "2026-11-25T12:00:00Z stdout F " + big + "\n" + rec(1)), opts: logs.Options{Tail: 2}, want: []string{big, "line-1"}},
		{name: "many chunks", current: ptr(recs(0, 20000)), opts: all, want: lines(0, 20000)},
		{name: "tail over many chunks", current: ptr(recs(0, 20000)), opts: logs.Options{Tail: 15000}, want: lines(5000, 20000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctr.log")
			if tt.rotated != nil {
				write(t, path+".1", *tt.rotated)
			}
			if tt.current != nil {
				write(t, path, *tt.current)
			}
			got, bad, err := collect(t, t.Context(), path, tt.opts)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			assertLines(t, got, tt.want)
			if len(bad) != tt.bad {
				t.Errorf("skipped %d records (%v), want %d", len(bad), bad, tt.bad)
			}
			for _, err := range bad {
				var re *logs.RecordError
				if !errors.As(err, &re) || !errors.Is(err, errdefs.ErrInvalid) || !strings.HasPrefix(re.Path, path) {
					t.Errorf("skipped record error %v: want a *RecordError for %s, ErrInvalid", err, path)
				}
			}
		})
	}
}

func TestReadMalformedOffsets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	content := rec(0) + "bad one\n" + rec(1) + "bad two\n"
	write(t, path, content)
	_, bad, err := collect(t, t.Context(), path, logs.Options{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{int64(strings.Index(content, "bad one")), int64(strings.Index(content, "bad two"))}
	var offs []int64
	for _, err := range bad {
		var re *logs.RecordError
		if errors.As(err, &re) {
			offs = append(offs, re.Offset)
		}
	}
	if !slices.Equal(offs, want) {
		t.Errorf("offsets %v, want %v", offs, want)
	}
}

func TestReadPartialAndStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	write(t, path, strings.Join(conmonLines, "\n")+"\n")
	var got []api.LogEntry
	err := logs.Read(t.Context(), path, logs.Options{Tail: -1}, func(e api.LogEntry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(conmonLines) {
		t.Fatalf("got %d entries, want %d", len(got), len(conmonLines))
	}
	for i, l := range conmonLines {
		want, err := logs.Parse([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		assertEntry(t, got[i], want)
	}
}

func TestReadStops(t *testing.T) {
	stop := errors.New("enough")
	tests := []struct {
		name    string
		opts    logs.Options
		cancel  bool
		fnErrAt int // fn fails on this entry; -1 never
		want    error
		seen    int
	}{
		{name: "fn error is returned as is", opts: logs.Options{Tail: -1}, fnErrAt: 2, want: stop, seen: 3},
		{name: "fn error while following", opts: logs.Options{Tail: -1, Follow: true}, fnErrAt: 0, want: stop, seen: 1},
		{name: "canceled context", opts: logs.Options{Tail: -1}, cancel: true, fnErrAt: -1, want: context.Canceled},
		{name: "canceled context while following", opts: logs.Options{Tail: -1, Follow: true}, cancel: true, fnErrAt: -1, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctr.log")
			write(t, path, recs(0, 10))
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			seen := 0
			err := logs.Read(ctx, path, tt.opts, func(api.LogEntry) error {
				seen++
				if seen-1 == tt.fnErrAt {
					return stop
				}
				return nil
			})
			if err != tt.want {
				t.Errorf("Read = %v, want %v", err, tt.want)
			}
			if seen != tt.seen {
				t.Errorf("fn called %d times, want %d", seen, tt.seen)
			}
		})
	}
}

// TestTailSeeksFromEnd checks that Tail does not read a big log from its
// start: the file begins with a 100 MiB hole of NUL bytes, which a forward
// read would report as an over-long malformed record.
func TestTailSeeksFromEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const hole = 100 << 20
	if _, err := f.WriteAt([]byte("\n"+recs(0, 100)), hole); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	got, bad, err := collect(t, t.Context(), path, logs.Options{Tail: 3})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	assertLines(t, got, lines(97, 100))
	if len(bad) != 0 {
		t.Errorf("tail read the start of the file: %v", bad)
	}
	// A forward read of 100 MiB takes tens of milliseconds at least; the
	// tail reads one chunk.
	if elapsed > 250*time.Millisecond {
		t.Errorf("tail of a 100 MiB log took %v", elapsed)
	}

	// The hole is there: reading all of it reports it.
	got, bad, err = collect(t, t.Context(), path, logs.Options{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, got, lines(0, 100))
	if len(bad) != 1 {
		t.Errorf("full read skipped %d records, want the hole", len(bad))
	}
}

func ptr(s string) *string { return &s }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	short := func(l []string) string {
		var b strings.Builder
		for i, s := range l {
			if i == 6 {
				fmt.Fprintf(&b, " ... (%d lines)", len(l))
				break
			}
			if len(s) > 20 {
				s = s[:20] + "..."
			}
			fmt.Fprintf(&b, "%q ", s)
		}
		return b.String()
	}
	t.Errorf("lines = %s\nwant    %s", short(got), short(want))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("first difference at %d: %.30q != %.30q", i, got[i], want[i])
			break
		}
	}
}
