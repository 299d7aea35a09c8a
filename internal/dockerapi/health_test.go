package dockerapi

import (
	"reflect"
	"testing"
	"time"

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
