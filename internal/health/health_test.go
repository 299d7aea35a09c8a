package health

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		test []string
		want []string
		err  string
	}{
		{"empty", nil, nil, ""},
		{"none", []string{"NONE"}, nil, ""},
		{"cmd", []string{"CMD", "pg_isready", "-U", "x"}, []string{"pg_isready", "-U", "x"}, ""},
		{"shell", []string{"CMD-SHELL", "curl -f localhost || exit 1"}, []string{"/bin/sh", "-c", "curl -f localhost || exit 1"}, ""},
		{"cmd alone", []string{"CMD"}, nil, "give the command"},
		{"shell two", []string{"CMD-SHELL", "a", "b"}, nil, "one shell command line"},
		{"none args", []string{"NONE", "x"}, nil, "NONE takes nothing"},
		{"no kind", []string{"true"}, nil, "start it with CMD, CMD-SHELL or NONE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Command(tc.test)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err = %v, want invalid with %q", err, tc.err)
				}
				return
			}
			if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("Command(%q) = %q, %v; want %q", tc.test, got, err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *api.HealthConfig
		err  string
	}{
		{"nil", nil, ""},
		{"timings only", &api.HealthConfig{Interval: time.Second}, ""},
		{"negative interval", &api.HealthConfig{Interval: -time.Second}, "interval"},
		{"tiny timeout", &api.HealthConfig{Timeout: time.Microsecond}, "at least 1ms"},
		{"negative retries", &api.HealthConfig{Retries: -1}, "retries"},
		{"bad test", &api.HealthConfig{Test: []string{"echo"}}, "CMD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.h)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Check = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	img := &api.HealthConfig{Test: []string{"CMD", "check"}, Interval: 7 * time.Second, Retries: 5}
	if got := Merge(nil, nil); got != nil {
		t.Errorf("Merge(nil, nil) = %+v", got)
	}
	if got := Merge(nil, img); got == img || got.Test[1] != "check" || got.Interval != 7*time.Second {
		t.Errorf("Merge(nil, img) = %+v, want a copy of img", got)
	}
	own := &api.HealthConfig{Test: []string{"NONE"}}
	if got := Merge(own, img); !Disabled(got) {
		t.Errorf("Merge(NONE, img) = %+v, want disabled", got)
	}
	got := Merge(&api.HealthConfig{Interval: time.Second}, img)
	if got.Test[1] != "check" || got.Interval != time.Second || got.Retries != 5 {
		t.Errorf("Merge(timings, img) = %+v, want img's test and retries with interval 1s", got)
	}
}

func TestSettingsOf(t *testing.T) {
	if _, ok := SettingsOf(&api.HealthConfig{Test: []string{"NONE"}}); ok {
		t.Error("NONE runs a check")
	}
	s, ok := SettingsOf(&api.HealthConfig{Test: []string{"CMD-SHELL", "true"}})
	if !ok || s.Interval != 30*time.Second || s.Timeout != 30*time.Second || s.StartInterval != time.Second || s.Retries != 3 || s.StartPeriod != 0 {
		t.Errorf("defaults = %+v", s)
	}
	s, _ = SettingsOf(&api.HealthConfig{Test: []string{"CMD", "x"}, Interval: 500 * time.Millisecond})
	if s.StartInterval != 500*time.Millisecond {
		t.Errorf("start interval = %s, want the 500ms interval (never slower)", s.StartInterval)
	}
}

func TestRecord(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Settings{Cmd: []string{"x"}, Interval: time.Second, Timeout: time.Second, StartPeriod: 10 * time.Second, StartInterval: time.Second, Retries: 2}
	res := func(at time.Duration, code int) api.HealthResult {
		return api.HealthResult{Start: t0.Add(at), End: t0.Add(at), ExitCode: code}
	}
	type step struct {
		r      api.HealthResult
		status string
		streak int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"pass makes healthy", []step{{res(time.Second, 0), api.HealthHealthy, 0}}},
		{"failures in start period not counted", []step{
			{res(time.Second, 1), api.HealthStarting, 0},
			{res(9*time.Second, 1), api.HealthStarting, 0},
			{res(11*time.Second, 1), api.HealthStarting, 1},
			{res(12*time.Second, 1), api.HealthUnhealthy, 2},
		}},
		{"healthy counts failures in start period", []step{
			{res(time.Second, 0), api.HealthHealthy, 0},
			{res(2*time.Second, 1), api.HealthHealthy, 1},
			{res(3*time.Second, -1), api.HealthUnhealthy, 2},
			{res(4*time.Second, 0), api.HealthHealthy, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := *Initial()
			for i, st := range tc.steps {
				h = Record(s, h, t0, st.r)
				if h.Status != st.status || h.FailingStreak != st.streak {
					t.Fatalf("step %d: status %s streak %d, want %s %d", i, h.Status, h.FailingStreak, st.status, st.streak)
				}
			}
		})
	}
}

func TestRecordLogBounded(t *testing.T) {
	s := Settings{Retries: 3, Interval: time.Second}
	h := *Initial()
	long := strings.Repeat("x", api.HealthOutputMax+100)
	for i := range 8 {
		h = Record(s, h, time.Time{}, api.HealthResult{ExitCode: i, Output: long})
	}
	if len(h.Log) != api.HealthLogKept || h.Log[0].ExitCode != 3 || h.Log[4].ExitCode != 7 {
		t.Fatalf("log = %d entries from %d, want the last 5 (3..7)", len(h.Log), h.Log[0].ExitCode)
	}
	if len(h.Log[4].Output) != api.HealthOutputMax {
		t.Fatalf("output kept %d bytes, want %d", len(h.Log[4].Output), api.HealthOutputMax)
	}
}

func TestNext(t *testing.T) {
	t0 := time.Now()
	s := Settings{Interval: 30 * time.Second, StartPeriod: 10 * time.Second, StartInterval: 2 * time.Second}
	for _, tc := range []struct {
		status string
		since  time.Duration
		want   time.Duration
	}{
		{api.HealthStarting, time.Second, 2 * time.Second},
		{api.HealthStarting, 11 * time.Second, 30 * time.Second},
		{api.HealthHealthy, time.Second, 30 * time.Second},
	} {
		if got := Next(s, tc.status, t0, t0.Add(tc.since)); got != tc.want {
			t.Errorf("Next(%s, +%s) = %s, want %s", tc.status, tc.since, got, tc.want)
		}
	}
}

// TestNextRampUp: with the default start interval the first checks come
// sooner, growing to the start interval; a start interval given is kept
// to; the interval applies once healthy or past the start period.
func TestNextRampUp(t *testing.T) {
	t0 := time.Now()
	s, ok := SettingsOf(&api.HealthConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, StartPeriod: 30 * time.Second})
	if !ok || !s.RampUp || s.StartInterval != DefaultStartInterval {
		t.Fatalf("settings %+v, want the default start interval with RampUp", s)
	}
	for _, tc := range []struct {
		status string
		since  time.Duration
		want   time.Duration
	}{
		{api.HealthStarting, 0, RampFirst},
		{api.HealthStarting, 150 * time.Millisecond, RampFirst},
		{api.HealthStarting, 600 * time.Millisecond, 300 * time.Millisecond},
		{api.HealthStarting, 1500 * time.Millisecond, 750 * time.Millisecond},
		{api.HealthStarting, 10 * time.Second, time.Second},
		{api.HealthStarting, 31 * time.Second, 5 * time.Second},
		{api.HealthHealthy, 0, 5 * time.Second},
	} {
		if got := Next(s, tc.status, t0, t0.Add(tc.since)); got != tc.want {
			t.Errorf("Next(%s, +%s) = %s, want %s", tc.status, tc.since, got, tc.want)
		}
	}
	// The checks of the first two seconds: a handful, not one per RampFirst.
	n := 0
	for at := time.Duration(0); at < 2*time.Second; at += Next(s, api.HealthStarting, t0, t0.Add(at)) {
		n++
	}
	if n < 4 || n > 10 {
		t.Errorf("%d checks in the first 2s, want between 4 and 10", n)
	}
	given, _ := SettingsOf(&api.HealthConfig{Test: []string{"CMD", "true"}, StartPeriod: 30 * time.Second, StartInterval: 2 * time.Second})
	if given.RampUp || Next(given, api.HealthStarting, t0, t0) != 2*time.Second {
		t.Errorf("a start interval given is not kept to: %+v", given)
	}
}

// fakeContainer answers checks with codes in turn; a code of -2 blocks
// until the check's context ends.
type fakeContainer struct {
	mu      sync.Mutex
	codes   []int
	running int // checks under way
	got     []api.Health
	stopAt  int // Record returns false at this many records (0: never)
}

func (f *fakeContainer) Exec(ctx context.Context, cmd []string, out io.Writer) (int, error) {
	f.mu.Lock()
	code := -2
	if len(f.codes) > 0 {
		code, f.codes = f.codes[0], f.codes[1:]
	}
	f.running++
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	io.WriteString(out, strings.Repeat("o", 5000))
	if code == -2 {
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return code, nil
}

func (f *fakeContainer) Record(h api.Health) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, h)
	return f.stopAt == 0 || len(f.got) < f.stopAt
}

func TestMonitorRun(t *testing.T) {
	s := Settings{Cmd: []string{"check"}, Interval: 5 * time.Millisecond, Timeout: 20 * time.Millisecond, StartInterval: 5 * time.Millisecond, Retries: 2}
	f := &fakeContainer{codes: []int{0, 1, -2}, stopAt: 4}
	done := make(chan struct{})
	go func() {
		Monitor{Settings: s, StartedAt: time.Now()}.Run(context.Background(), f, *Initial())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when Record returned false")
	}
	want := []string{api.HealthHealthy, api.HealthHealthy, api.HealthUnhealthy, api.HealthUnhealthy}
	for i, h := range f.got {
		if h.Status != want[i] {
			t.Fatalf("record %d: %s, want %s", i, h.Status, want[i])
		}
	}
	last := f.got[2].Log[2]
	if last.ExitCode != -1 || !strings.Contains(last.Output, "exceeded timeout") {
		t.Fatalf("timed-out check logged as %+v", last)
	}
	if len(f.got[0].Log[0].Output) != api.HealthOutputMax {
		t.Fatalf("output kept %d bytes", len(f.got[0].Log[0].Output))
	}
}

// TestMonitorStopsWithContext: cancelling the context mid-check ends
// the check and Run, leaving no goroutine behind.
func TestMonitorStopsWithContext(t *testing.T) {
	before := runtime.NumGoroutine()
	s := Settings{Cmd: []string{"check"}, Interval: time.Millisecond, Timeout: time.Hour, StartInterval: time.Millisecond, Retries: 1}
	for range 20 {
		f := &fakeContainer{} // every check blocks
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			Monitor{Settings: s, StartedAt: time.Now()}.Run(ctx, f, *Initial())
			close(done)
		}()
		for {
			f.mu.Lock()
			n := f.running
			f.mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		f.mu.Lock()
		if f.running != 0 || len(f.got) != 0 {
			t.Fatalf("after Run returned: %d checks running, %d recorded", f.running, len(f.got))
		}
		f.mu.Unlock()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the monitors stopped, %d before", n, before)
	}
}
