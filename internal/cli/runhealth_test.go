package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
)

func TestHealthFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want *api.HealthConfig
		err  string
	}{
		{"none given", nil, nil, ""},
		{"cmd", []string{"--health-cmd", "pg_isready", "--health-interval", "2s", "--health-retries", "4"},
			&api.HealthConfig{Test: []string{"CMD-SHELL", "pg_isready"}, Interval: 2 * time.Second, Retries: 4}, ""},
		{"timings only", []string{"--health-timeout", "1s", "--health-start-period", "3s", "--health-start-interval", "500ms"},
			&api.HealthConfig{Timeout: time.Second, StartPeriod: 3 * time.Second, StartInterval: 500 * time.Millisecond}, ""},
		{"no healthcheck", []string{"--no-healthcheck"}, &api.HealthConfig{Test: []string{"NONE"}}, ""},
		{"conflict", []string{"--no-healthcheck", "--health-cmd", "true"}, nil, "--no-healthcheck conflicts"},
		{"negative retries", []string{"--health-retries", "-1"}, nil, "--health-retries -1"},
		{"tiny interval", []string{"--health-interval", "1us"}, nil, "--health-interval 1µs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f runFlags
			cmd := &cobra.Command{Use: "run"}
			f.register(cmd)
			args := append(append([]string{}, tc.args...), "img")
			if err := cmd.Flags().Parse(args); err != nil {
				t.Fatal(err)
			}
			req, err := f.request([]string{"img"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := req.Config.Healthcheck
			if (got == nil) != (tc.want == nil) || got != nil && (strings.Join(got.Test, "|") != strings.Join(tc.want.Test, "|") ||
				got.Interval != tc.want.Interval || got.Timeout != tc.want.Timeout || got.StartPeriod != tc.want.StartPeriod ||
				got.StartInterval != tc.want.StartInterval || got.Retries != tc.want.Retries) {
				t.Fatalf("healthcheck = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHealthStatusText(t *testing.T) {
	now := time.Now()
	st := api.ContainerState{Status: api.StatusRunning, StartedAt: now.Add(-3 * time.Second)}
	for _, tc := range []struct {
		h    *api.Health
		want string
	}{
		{nil, "Up 3 seconds"},
		{&api.Health{Status: api.HealthStarting}, "Up 3 seconds (health: starting)"},
		{&api.Health{Status: api.HealthHealthy}, "Up 3 seconds (healthy)"},
		{&api.Health{Status: api.HealthUnhealthy}, "Up 3 seconds (unhealthy)"},
	} {
		st.Health = tc.h
		if got := statusText(st, now); got != tc.want {
			t.Errorf("statusText = %q, want %q", got, tc.want)
		}
	}
}

func TestPsFilterHealth(t *testing.T) {
	if _, err := parsePsFilter([]string{"health=sick"}); err == nil || !strings.Contains(err.Error(), "starting, healthy, unhealthy, none") {
		t.Fatalf("health=sick: %v", err)
	}
	f, err := parsePsFilter([]string{"health=healthy", "health=none"})
	if err != nil {
		t.Fatal(err)
	}
	healthy := api.Container{State: api.ContainerState{Health: &api.Health{Status: api.HealthHealthy}}}
	sick := api.Container{State: api.ContainerState{Health: &api.Health{Status: api.HealthUnhealthy}}}
	if !f.match(healthy) || !f.match(api.Container{}) || f.match(sick) {
		t.Fatal("health filter matched wrongly")
	}
}
