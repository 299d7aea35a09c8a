package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func dur(d time.Duration) api.Duration { return api.Duration{Duration: d} }

// server is a loopback HTTP server answering each path with the status
// its handler returns.
func server(t *testing.T, h http.HandlerFunc) (ip string, port int) {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	host, p, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	port, _ = strconv.Atoi(p)
	return host, port
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestOnce(t *testing.T) {
	ip, port := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/nowhere", http.StatusFound)
		case "/auth":
			if r.Header.Get("X-Probe") != "yes" || r.Header.Get("User-Agent") != "skiff-probe" {
				w.WriteHeader(http.StatusForbidden)
			}
		case "/slow":
			time.Sleep(500 * time.Millisecond)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	var ran []string
	exec := func(ctx context.Context, cmd []string) (int, error) {
		ran = cmd
		switch cmd[0] {
		case "true":
			return 0, nil
		case "false":
			return 1, nil
		}
		return -1, errors.New("no such command")
	}
	closed := closedPort(t)
	tests := []struct {
		name    string
		probe   api.Probe
		wantErr string // "" passes
	}{
		{"http 200", api.Probe{HTTP: &api.HTTPGetAction{Path: "/ok"}}, ""},
		{"http 500", api.Probe{HTTP: &api.HTTPGetAction{Path: "/fail"}}, "status 500"},
		{"http redirect passes, not followed", api.Probe{HTTP: &api.HTTPGetAction{Path: "/moved"}}, ""},
		{"http headers sent", api.Probe{HTTP: &api.HTTPGetAction{Path: "/auth", Headers: []api.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}}, ""},
		{"http headers missing", api.Probe{HTTP: &api.HTTPGetAction{Path: "/auth"}}, "status 403"},
		{"http port of the probe", api.Probe{HTTP: &api.HTTPGetAction{Path: "/ok", Port: closed}}, "refused"},
		{"http timeout", api.Probe{HTTP: &api.HTTPGetAction{Path: "/slow"}, Timeout: dur(100 * time.Millisecond)}, "deadline exceeded"},
		{"tcp open", api.Probe{TCP: &api.TCPSocketAction{}}, ""},
		{"tcp closed", api.Probe{TCP: &api.TCPSocketAction{Port: closed}}, "refused"},
		{"exec exit 0", api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}}, ""},
		{"exec exit 1", api.Probe{Exec: &api.ExecAction{Command: []string{"false"}}}, "exit code 1"},
		{"exec fails", api.Probe{Exec: &api.ExecAction{Command: []string{"nope"}}}, "no such command"},
		{"no action", api.Probe{}, "no action"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := withDefaults(&tc.probe, time.Second, 3)
			err := Once(context.Background(), &p, ip, port, exec, NewHTTPClient())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("probe failed: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
	if strings.Join(ran, " ") != "nope" {
		t.Fatalf("exec ran %q", ran)
	}
}

func TestConfigDefaults(t *testing.T) {
	startup, readiness, liveness := Config(api.Probes{Startup: &api.Probe{HTTP: &api.HTTPGetAction{Path: "/s"}}, Liveness: &api.Probe{TCP: &api.TCPSocketAction{}}}, 9000)
	if startup.Period.Duration != time.Second || startup.FailureThreshold != 30 || startup.SuccessThreshold != 1 || startup.Timeout.Duration != time.Second {
		t.Errorf("startup defaults: %+v", startup)
	}
	if readiness.TCP == nil || readiness.TCP.Port != 9000 || readiness.Period.Duration != time.Second || readiness.FailureThreshold != 3 {
		t.Errorf("readiness defaults to TCP on the port: %+v", readiness)
	}
	if liveness.Period.Duration != 10*time.Second || liveness.FailureThreshold != 3 {
		t.Errorf("liveness defaults: %+v", liveness)
	}
	if s, _, l := Config(api.Probes{}, 80); s != nil || l != nil {
		t.Errorf("startup and liveness set without being asked for")
	}
}

func TestPace(t *testing.T) {
	tests := []struct {
		since, period, want time.Duration
	}{
		{0, time.Second, FastPeriod},
		{2 * time.Second, time.Second, FastPeriod},
		{5 * time.Second, time.Second, MediumPeriod},
		{time.Minute, time.Second, time.Second},
		{0, 500 * time.Microsecond, 500 * time.Microsecond},
	}
	for _, tc := range tests {
		if got := Pace(tc.since, tc.period); got != tc.want {
			t.Errorf("Pace(%v, %v) = %v, want %v", tc.since, tc.period, got, tc.want)
		}
	}
}
