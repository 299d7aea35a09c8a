package logs_test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/logs"
)

func BenchmarkParse(b *testing.B) {
	line := []byte("2026-11-25T17:14:42.414126137+00:00 stdout F GET /api/v1/items?page=2 200 1.2ms 203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := logs.Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFollowLatency measures the time from the write of a record to
// its delivery to a following reader's fn; ns/op is that latency.
func BenchmarkFollowLatency(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ctr.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	got := make(chan time.Time, 1)
	done := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- logs.Read(b.Context(), path, logs.Options{Tail: -1, Follow: true, Done: done}, func(api.LogEntry) error {
			got <- time.Now()
			return nil
		})
	}()
	rec := logs.AppendRecord(nil, api.LogEntry{Time: time.Now(), Stream: "stdout", Line: "a line of output"})
	// Let the reader reach its wait before the first timed write.
	time.Sleep(10 * time.Millisecond)
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
		select {
		case t := <-got:
			lat = append(lat, t.Sub(start))
		case <-time.After(5 * time.Second):
			b.Fatal("record not delivered within 5s")
		}
	}
	b.StopTimer()
	close(done)
	if err := <-result; err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// bigLog writes a log of about size bytes of short records.
func bigLog(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "ctr.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var rec []byte
	t := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var n int64
	for i := 0; n < size; i++ {
		rec = logs.AppendRecord(rec[:0], api.LogEntry{Time: t.Add(time.Duration(i) * time.Millisecond), Stream: "stdout", Line: "GET /api/v1/items?page=2 200 1.2ms 203.0.113.7"})
		bw.Write(rec)
		n += int64(len(rec))
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	return path
}

func BenchmarkTail100MB(b *testing.B) {
	path := bigLog(b, 100<<20)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := logs.Read(b.Context(), path, logs.Options{Tail: 100}, func(api.LogEntry) error {
			n++
			return nil
		})
		if err != nil || n != 100 {
			b.Fatalf("got %d entries, %v", n, err)
		}
	}
}

func BenchmarkReadAll100MB(b *testing.B) {
	path := bigLog(b, 100<<20)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for b.Loop() {
		err := logs.Read(b.Context(), path, logs.Options{Tail: -1}, func(api.LogEntry) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}
