package compose

import (
	"reflect"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
)

func TestHealthConfig(t *testing.T) {
	d := func(v time.Duration) *types.Duration { x := types.Duration(v); return &x }
	r := func(n uint64) *uint64 { return &n }
	for _, tc := range []struct {
		name string
		in   *types.HealthCheckConfig
		want *api.HealthConfig
	}{
		{"none", nil, nil},
		{"empty", &types.HealthCheckConfig{}, nil},
		{"disable", &types.HealthCheckConfig{Disable: true}, &api.HealthConfig{Test: []string{"NONE"}}},
		{"cmd", &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD", "pg_isready"}, Interval: d(time.Second), Timeout: d(2 * time.Second),
			StartPeriod: d(3 * time.Second), StartInterval: d(100 * time.Millisecond), Retries: r(5)},
			&api.HealthConfig{Test: []string{"CMD", "pg_isready"}, Interval: time.Second, Timeout: 2 * time.Second,
				StartPeriod: 3 * time.Second, StartInterval: 100 * time.Millisecond, Retries: 5}},
		{"bare test is a shell command", &types.HealthCheckConfig{Test: types.HealthCheckTest{"curl", "-f", "x"}},
			&api.HealthConfig{Test: []string{"CMD-SHELL", "curl -f x"}}},
		{"timings only: the image's test", &types.HealthCheckConfig{Retries: r(9)}, &api.HealthConfig{Retries: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := healthConfig(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("healthConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}
