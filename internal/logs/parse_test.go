package logs_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/logs"
)

// Lines written by conmon 2.1.6 on this kind of host (see TestConmon for
// the live check).
var conmonLines = []string{
	"2026-11-25T17:14:42.414126137+00:00 stdout F hello",
	"2026-11-25T17:14:42.414126137+00:00 stdout P no newline",
	"2026-11-25T17:14:42.414205825+00:00 stderr F err",
	"2026-11-25T17:14:42.515212009+00:00 stdout F  rest",
	"2026-11-25T17:14:42.515212009+00:00 stdout F ",
	"2026-11-25T17:14:42.515212009+00:00 stdout F a\tb",
}

func TestParse(t *testing.T) {
	ts := time.Date(2026, 11, 25, 17, 14, 42, 414126137, time.UTC)
	tests := []struct {
		name string
		line string
		want api.LogEntry
	}{
		{"full", "2026-11-25T17:14:42.414126137+00:00 stdout F hello", api.LogEntry{Time: ts, Stream: "stdout", Line: "hello"}},
		{"partial", "2026-11-25T17:14:42.414126137+00:00 stdout P no newline", api.LogEntry{Time: ts, Stream: "stdout", Line: "no newline", Partial: true}},
		{"stderr", "2026-11-25T17:14:42.414126137+00:00 stderr F err", api.LogEntry{Time: ts, Stream: "stderr", Line: "err"}},
		{"leading space kept", "2026-11-25T17:14:42.414126137+00:00 stdout F  rest", api.LogEntry{Time: ts, Stream: "stdout", Line: " rest"}},
		{"empty line", "2026-11-25T17:14:42.414126137+00:00 stdout F ", api.LogEntry{Time: ts, Stream: "stdout"}},
		{"empty line without separator", "2026-11-25T17:14:42.414126137+00:00 stdout F", api.LogEntry{Time: ts, Stream: "stdout"}},
		{"tabs and spaces kept", "2026-11-25T17:14:42.414126137+00:00 stdout F a\tb  c ", api.LogEntry{Time: ts, Stream: "stdout", Line: "a\tb  c "}},
		{"offset converted to UTC", "2026-11-25T18:14:42.414126137+01:00 stdout F x", api.LogEntry{Time: ts, Stream: "stdout", Line: "x"}},
		{"negative offset", "2026-11-25T12:44:42.414126137-04:30 stdout F x", api.LogEntry{Time: ts, Stream: "stdout", Line: "x"}},
		{"Z and fewer digits", "2026-11-25T17:14:42.4Z stdout F x", api.LogEntry{Time: ts.Truncate(time.Second).Add(400 * time.Millisecond), Stream: "stdout", Line: "x"}},
		{"CRI tag fields", "2026-11-25T17:14:42.414126137Z stdout P:x:y z", api.LogEntry{Time: ts, Stream: "stdout", Line: "z", Partial: true}},
		{"invalid UTF-8 kept", "2026-11-25T17:14:42.414126137Z stdout F \xff\xfe", api.LogEntry{Time: ts, Stream: "stdout", Line: "\xff\xfe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := logs.Parse([]byte(tt.line))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.line, err)
			}
			assertEntry(t, got, tt.want)
			if got.Time.Location() != time.UTC {
				t.Errorf("time location = %v, want UTC", got.Time.Location())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string // in the message
	}{
		{"empty", "", "bad timestamp"},
		{"timestamp only", "2026-11-25T17:14:42.414126137Z", "no stream"},
		{"no tag", "2026-11-25T17:14:42.414126137Z stdout", "no tag"},
		{"bad timestamp", "yesterday stdout F x", "bad timestamp"},
		{"timestamp without zone", "2026-11-25T17:14:42.414126137 stdout F x", "bad timestamp"},
		{"unknown stream", "2026-11-25T17:14:42.414126137Z stdin F x", "unknown stream"},
		{"stream case", "2026-11-25T17:14:42.414126137Z STDOUT F x", "unknown stream"},
		{"unknown tag", "2026-11-25T17:14:42.414126137Z stdout X x", "bad tag"},
		{"long tag", "2026-11-25T17:14:42.414126137Z stdout FP x", "bad tag"},
		{"empty tag", "2026-11-25T17:14:42.414126137Z stdout  x", "bad tag"},
		{"docker json line", `{"log":"x\n","stream":"stdout","time":"2026-11-25T17:14:42Z"}`, "bad timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := logs.Parse([]byte(tt.line))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error", tt.line)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestAppendRecord(t *testing.T) {
	tests := []struct {
		name  string
		entry api.LogEntry
		want  string
	}{
		{
			"full in UTC",
			api.LogEntry{Time: time.Date(2026, 11, 25, 17, 14, 42, 414126137, time.UTC), Stream: "stdout", Line: "hello"},
			"2026-11-25T17:14:42.414126137+00:00 stdout F hello\n",
		},
		{
			"partial keeps zone and pads nanoseconds",
			api.LogEntry{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", -(4*3600+1800))), Stream: "stderr", Line: "a b", Partial: true},
			"2026-01-02T03:04:05.000006000-04:30 stderr P a b\n",
		},
		{
			"empty line",
			api.LogEntry{Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Stream: "stdout"},
			"2026-11-25T00:00:00.000000000+00:00 stdout F \n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(logs.AppendRecord([]byte("x"), tt.entry))
			if got != "x"+tt.want {
				t.Errorf("AppendRecord = %q, want %q", got, "x"+tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, l := range conmonLines {
		f.Add([]byte(l))
	}
	f.Add([]byte("2026-11-25T17:14:42Z stderr P:a"))
	f.Add([]byte("0000-01-01T00:00:00+01:00 stdout F x"))
	f.Add([]byte(" stdout F x"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := logs.Parse(line)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("Parse error %v is not ErrInvalid", err)
			}
			return
		}
		if e.Stream != logs.Stdout && e.Stream != logs.Stderr {
			t.Fatalf("stream %q", e.Stream)
		}
		if len(e.Line) > len(line) {
			t.Fatalf("line %q longer than the record %q", e.Line, line)
		}
		if y := e.Time.Year(); y < 0 || y > 9999 {
			return // RFC 3339 cannot write it back (an offset moved it out of range)
		}
		rec := logs.AppendRecord(nil, e)
		again, err := logs.Parse(rec[:len(rec)-1])
		if err != nil {
			t.Fatalf("Parse(AppendRecord(%+v)) = %v", e, err)
		}
		assertEntry(t, again, e)
	})
}

func assertEntry(t *testing.T, got, want api.LogEntry) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.Stream != want.Stream || got.Line != want.Line || got.Partial != want.Partial {
		t.Errorf("entry = {%v %s %q partial=%v}, want {%v %s %q partial=%v}",
			got.Time.Format(time.RFC3339Nano), got.Stream, got.Line, got.Partial,
			want.Time.Format(time.RFC3339Nano), want.Stream, want.Line, want.Partial)
	}
}
