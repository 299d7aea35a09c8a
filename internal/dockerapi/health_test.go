package dockerapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"skiff.dev/skiff/api"
)

func TestEventHubHealthStatus(t *testing.T) {
	h := NewEventHub()
	_, ch, cancel := h.subscribe(time.Time{})
	defer cancel()
	c := api.Container{ID: "c1", Name: "db", Config: api.ContainerConfig{Image: "pg"}}
	steps := []struct {
		status, health string
	}{
		{api.StatusCreated, ""},
		{api.StatusRunning, api.HealthStarting},
		{api.StatusRunning, api.HealthStarting},
		{api.StatusRunning, api.HealthHealthy},
		{api.StatusRunning, api.HealthHealthy},
		{api.StatusRunning, api.HealthUnhealthy},
		{api.StatusExited, api.HealthUnhealthy},
		{api.StatusRunning, api.HealthStarting},
		{api.StatusRunning, api.HealthUnhealthy},
	}
	for _, st := range steps {
		c.State.Status, c.State.Health = st.status, nil
		if st.health != "" {
			c.State.Health = &api.Health{Status: st.health}
		}
		h.ContainerChanged(c, false)
	}
	var got []string
	for len(ch) > 0 {
		got = append(got, string((<-ch).Action))
	}
	want := []string{"create", "start", "health_status: healthy", "health_status: unhealthy", "die", "start", "health_status: unhealthy"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestHealthcheckMapping(t *testing.T) {
	var req container.CreateRequest
	body := `{"Image":"x","Healthcheck":{"Test":["CMD-SHELL","pg_isready"],"Interval":2000000000,"Timeout":500000000,"StartPeriod":3000000000,"StartInterval":100000000,"Retries":4}}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	cfg, err := createConfig(req)
	if err != nil {
		t.Fatal(err)
	}
	want := api.HealthConfig{Test: []string{"CMD-SHELL", "pg_isready"}, Interval: 2 * time.Second, Timeout: 500 * time.Millisecond,
		StartPeriod: 3 * time.Second, StartInterval: 100 * time.Millisecond, Retries: 4}
	if cfg.Healthcheck == nil || !reflect.DeepEqual(*cfg.Healthcheck, want) {
		t.Fatalf("Healthcheck = %+v, want %+v", cfg.Healthcheck, want)
	}
	now := time.Now()
	c := api.Container{ID: "abc", Name: "db", Config: cfg, State: api.ContainerState{
		Status: api.StatusRunning, StartedAt: now.Add(-3 * time.Second),
		Health: &api.Health{Status: api.HealthHealthy, Log: []api.HealthResult{{Start: now, End: now, ExitCode: 0, Output: "ok"}}},
	}}
	res := inspectResponse(c)
	if res.State.Health == nil || res.State.Health.Status != container.Healthy || len(res.State.Health.Log) != 1 || res.State.Health.Log[0].Output != "ok" {
		t.Errorf("inspect State.Health = %+v", res.State.Health)
	}
	if got := res.Config.Healthcheck; got == nil || got.Interval != 2*time.Second || got.Retries != 4 || got.StartInterval != 100*time.Millisecond {
		t.Errorf("inspect Config.Healthcheck = %+v", got)
	}
	s := summary(c, now)
	if s.Status != "Up 3 seconds (healthy)" || s.Health == nil || s.Health.Status != container.Healthy {
		t.Errorf("summary status %q health %+v", s.Status, s.Health)
	}
	if !matchHealth("healthy", c) || matchHealth("none", c) || !matchHealth("none", api.Container{}) {
		t.Error("health filter")
	}
}
