package app

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// baseSpec is a spec as a user writes it, before defaults.
func baseSpec() api.AppSpec {
	return api.AppSpec{
		Image:     "localhost/shop:1.4",
		Command:   []string{"/shop"},
		Args:      []string{"--fast"},
		Env:       []api.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "DB", SecretRef: "db/password"}},
		Resources: api.AppResources{CPU: "500m", Memory: "256Mi"},
		Probes:    api.Probes{Readiness: &api.Probe{HTTP: &api.HTTPGetAction{Path: "/healthz"}}},
		Volumes:   []api.VolumeMount{{Name: "data", MountPath: "/data"}},
		Scale:     api.Scale{Min: ptr(0), Max: ptr(5)},
		Traffic:   []api.TrafficTarget{{Latest: true, Percent: 100}},
	}
}

func TestNeedsNewRevision(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *api.AppSpec)
		want   bool
	}{
		// The runnable part: each change makes a new revision.
		{name: "image tag", change: func(s *api.AppSpec) { s.Image = "localhost/shop:1.5" }, want: true},
		{name: "command", change: func(s *api.AppSpec) { s.Command = []string{"/shop2"} }, want: true},
		{name: "command removed", change: func(s *api.AppSpec) { s.Command = nil }, want: true},
		{name: "args", change: func(s *api.AppSpec) { s.Args = append(s.Args, "--debug") }, want: true},
		{name: "env value", change: func(s *api.AppSpec) { s.Env[0].Value = "dev" }, want: true},
		{name: "env added", change: func(s *api.AppSpec) { s.Env = append(s.Env, api.EnvVar{Name: "X", Value: "1"}) }, want: true},
		{name: "env order", change: func(s *api.AppSpec) { s.Env[0], s.Env[1] = s.Env[1], s.Env[0] }, want: true},
		{name: "env secret ref", change: func(s *api.AppSpec) { s.Env[1].SecretRef = "db/password2" }, want: true},
		{name: "port", change: func(s *api.AppSpec) { s.Port = 9090 }, want: true},
		{name: "cpu", change: func(s *api.AppSpec) { s.Resources.CPU = "1" }, want: true},
		{name: "memory", change: func(s *api.AppSpec) { s.Resources.Memory = "512Mi" }, want: true},
		{name: "pids", change: func(s *api.AppSpec) { s.Resources.Pids = 100 }, want: true},
		{name: "readiness path", change: func(s *api.AppSpec) { s.Probes.Readiness.HTTP.Path = "/ready" }, want: true},
		{name: "readiness period", change: func(s *api.AppSpec) { s.Probes.Readiness.Period.Duration = 5 * time.Second }, want: true},
		{name: "liveness added", change: func(s *api.AppSpec) { s.Probes.Liveness = &api.Probe{TCP: &api.TCPSocketAction{}} }, want: true},
		{name: "volume added", change: func(s *api.AppSpec) {
			s.Volumes = append(s.Volumes, api.VolumeMount{Name: "cache", MountPath: "/cache"})
		}, want: true},
		{name: "volume read-only", change: func(s *api.AppSpec) { s.Volumes[0].ReadOnly = true }, want: true},

		// The rest: no new revision.
		{name: "nothing", change: func(s *api.AppSpec) {}, want: false},
		{name: "scale min", change: func(s *api.AppSpec) { s.Scale.Min = ptr(3) }, want: false},
		{name: "scale max", change: func(s *api.AppSpec) { s.Scale.Max = ptr(50) }, want: false},
		{name: "scale target", change: func(s *api.AppSpec) { s.Scale.Concurrency = 0; s.Scale.RPS = 10 }, want: false},
		{name: "idle timeout", change: func(s *api.AppSpec) { s.Scale.IdleTimeout.Duration = time.Minute }, want: false},
		{name: "prewarm", change: func(s *api.AppSpec) { s.Scale.Prewarm = 2 }, want: false},
		{name: "traffic", change: func(s *api.AppSpec) {
			s.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 50}, {Latest: true, Percent: 50}}
		}, want: false},
		{name: "ingress host", change: func(s *api.AppSpec) { s.Ingress.Host = "shop.example.com" }, want: false},
		{name: "ingress timeout", change: func(s *api.AppSpec) { s.Ingress.Timeout.Duration = time.Minute }, want: false},
		{name: "ingress external", change: func(s *api.AppSpec) { s.Ingress.External = true }, want: false},
		{name: "revision history", change: func(s *api.AppSpec) { s.RevisionHistoryLimit = ptr(2) }, want: false},

		// Writing out a default is not a change.
		{name: "default port written", change: func(s *api.AppSpec) { s.Port = DefaultPort }, want: false},
		{name: "default probe port written", change: func(s *api.AppSpec) { s.Probes.Readiness.HTTP.Port = DefaultPort }, want: false},
		{name: "default probe period written", change: func(s *api.AppSpec) {
			s.Probes.Readiness.Period.Duration = DefaultReadinessPeriod
		}, want: false},
		{name: "readiness removed for the default", change: func(s *api.AppSpec) { s.Probes.Readiness = nil }, want: true},
		{name: "empty list for absent list", change: func(s *api.AppSpec) {
			s.Probes.Readiness.HTTP.Headers = []api.HTTPHeader{}
		}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := baseSpec()
			new := baseSpec()
			tt.change(&new)
			if got := NeedsNewRevision(old, new); got != tt.want {
				t.Errorf("NeedsNewRevision = %v, want %v", got, tt.want)
			}
			// The comparison neither changes its inputs nor depends on order.
			if got := NeedsNewRevision(new, old); got != tt.want {
				t.Errorf("NeedsNewRevision(new, old) = %v, want %v", got, tt.want)
			}
			if d := Diff(api.App{Spec: old}, api.App{Spec: baseSpec()}); d != "" {
				t.Errorf("NeedsNewRevision changed its input:\n%s", d)
			}
		})
	}
}

func TestNeedsNewRevisionDefaultReadiness(t *testing.T) {
	// An App without a readiness probe gets a TCP probe on its port:
	// writing that probe out is no change.
	old := api.AppSpec{Image: "x"}
	new := api.AppSpec{Image: "x", Probes: api.Probes{Readiness: &api.Probe{TCP: &api.TCPSocketAction{Port: DefaultPort}}}}
	if NeedsNewRevision(old, new) {
		t.Error("writing out the default readiness probe made a new revision")
	}
}

func TestHashStable(t *testing.T) {
	// The hash of a revision spec is stored with each revision: it must
	// not change between skiff versions. If this test fails, the JSON form
	// of RevisionSpec changed (a renamed field, a new field without
	// omitempty): existing revisions would all look changed.
	rs := RevisionSpecOf(baseSpec())
	setRevisionDefaults(&rs)
	const wantJSON = `{"image":"localhost/shop:1.4","command":["/shop"],"args":["--fast"],` +
		`"env":[{"name":"MODE","value":"prod"},{"name":"DB","secretRef":"db/password"}],"port":8080,` +
		`"resources":{"cpu":"500m","memory":"256Mi"},"probes":{"readiness":{"http":{"path":"/healthz","port":8080},` +
		`"period":"1s","timeout":"1s","successThreshold":1,"failureThreshold":3}},"volumes":[{"name":"data","mountPath":"/data"}]}`
	if b, _ := json.Marshal(rs); string(b) != wantJSON {
		t.Errorf("JSON form of the revision spec changed:\n got %s\nwant %s", b, wantJSON)
	}
	const want = "70278ee740601d92b1bc84e64d33427125e0fd6ce9788490196a032c472ad417" // sha256 of wantJSON
	if got := Hash(rs); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	if Hash(api.RevisionSpec{Image: "a"}) == Hash(api.RevisionSpec{Image: "b"}) {
		t.Error("different specs hash equally")
	}
	// Durations hash by value, however they were written.
	a := api.RevisionSpec{Probes: api.Probes{Liveness: &api.Probe{Period: api.Duration{Duration: 90 * time.Second}}}}
	b := api.RevisionSpec{Probes: api.Probes{Liveness: &api.Probe{Period: api.Duration{Duration: 1*time.Minute + 30*time.Second}}}}
	if Hash(a) != Hash(b) {
		t.Error("equal durations hash differently")
	}
}

func TestRevisionSpecOfSharesNothing(t *testing.T) {
	s := baseSpec()
	rs := RevisionSpecOf(s)
	before := Hash(rs)
	s.Command[0] = "changed"
	s.Env[0].Value = "changed"
	s.Probes.Readiness.HTTP.Path = "/changed"
	s.Volumes[0].Name = "changed"
	if Hash(rs) != before {
		t.Error("changing the spec changed the revision spec taken from it")
	}
}

func TestRevisionName(t *testing.T) {
	tests := []struct {
		app  string
		n    int
		want string
	}{
		{"shop", 1, "shop-00001"},
		{"shop", 3, "shop-00003"},
		{"a-b-c", 12345, "a-b-c-12345"},
		{"shop", MaxRevisionNumber, "shop-99999"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := RevisionName(tt.app, tt.n); got != tt.want {
				t.Fatalf("RevisionName(%q, %d) = %q, want %q", tt.app, tt.n, got, tt.want)
			}
			app, n, err := ParseRevisionName(tt.want)
			if err != nil || app != tt.app || n != tt.n {
				t.Fatalf("ParseRevisionName(%q) = %q, %d, %v", tt.want, app, n, err)
			}
		})
	}
	// The longest App name still gives a valid DNS label.
	long := "a" + strings.Repeat("b", MaxNameLength-1)
	if r := RevisionName(long, MaxRevisionNumber); len(r) > 63 || !dns1035LabelRE.MatchString(r) {
		t.Errorf("revision name %q of a %d-character app is not a DNS label", r, len(long))
	}
}

func TestParseRevisionNameErrors(t *testing.T) {
	for _, name := range []string{"", "shop", "shop-", "-00001", "shop-1", "shop-000001", "shop-0000a", "shop-00000", "shop-+0001", "shop_00001"} {
		t.Run(name, func(t *testing.T) {
			app, n, err := ParseRevisionName(name)
			if err == nil {
				t.Fatalf("ParseRevisionName(%q) = %q, %d; want an error", name, app, n)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error is not ErrInvalid: %v", err)
			}
		})
	}
}

func TestNewRevision(t *testing.T) {
	app := api.App{Metadata: api.ObjectMeta{Name: "shop", Generation: 4}, Spec: baseSpec()}
	SetDefaults(&app)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	rev, err := NewRevision(app, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Name != "shop-00003" || rev.App != "shop" || rev.Generation != 4 || !rev.Created.Equal(now) || rev.Created.Location() != time.UTC {
		t.Errorf("NewRevision = %+v", rev)
	}
	if rev.Hash != Hash(rev.Spec) || rev.Spec.Image != app.Spec.Image {
		t.Errorf("revision spec or hash wrong: %+v", rev)
	}
	for _, n := range []int{0, -1, MaxRevisionNumber + 1} {
		if _, err := NewRevision(app, n, now); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("NewRevision(%d) error = %v, want ErrInvalid", n, err)
		}
	}
}
