package app

import (
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func TestSetDefaults(t *testing.T) {
	tests := []struct {
		name  string
		spec  api.AppSpec
		check func(t *testing.T, s api.AppSpec)
	}{
		{
			name: "empty spec",
			spec: api.AppSpec{Image: "x"},
			check: func(t *testing.T, s api.AppSpec) {
				if s.Port != 8080 || *s.Scale.Min != 1 || *s.Scale.Max != 10 || s.Scale.Concurrency != 100 ||
					s.Scale.IdleTimeout.Duration != time.Minute || *s.RevisionHistoryLimit != 10 ||
					s.Ingress.PathPrefix != "/" || s.Ingress.Timeout.Duration != 300*time.Second || s.Ingress.Host != "" {
					t.Errorf("defaults = %+v", s)
				}
				r := s.Probes.Readiness
				if r == nil || r.TCP == nil || r.TCP.Port != 8080 || r.Period.Duration != time.Second ||
					r.Timeout.Duration != time.Second || r.SuccessThreshold != 1 || r.FailureThreshold != 3 {
					t.Errorf("default readiness probe = %+v", r)
				}
				if s.Probes.Startup != nil || s.Probes.Liveness != nil {
					t.Errorf("startup or liveness probe defaulted: %+v", s.Probes)
				}
				if len(s.Traffic) != 1 || s.Traffic[0] != (api.TrafficTarget{Latest: true, Percent: 100}) {
					t.Errorf("default traffic = %+v", s.Traffic)
				}
			},
		},
		{
			name: "scale to zero kept",
			spec: api.AppSpec{Scale: api.Scale{Min: ptr(0)}},
			check: func(t *testing.T, s api.AppSpec) {
				if *s.Scale.Min != 0 || *s.Scale.Max != 10 {
					t.Errorf("scale = min %d max %d", *s.Scale.Min, *s.Scale.Max)
				}
			},
		},
		{
			name: "max follows a large min",
			spec: api.AppSpec{Scale: api.Scale{Min: ptr(25)}},
			check: func(t *testing.T, s api.AppSpec) {
				if *s.Scale.Max != 25 {
					t.Errorf("max = %d, want 25", *s.Scale.Max)
				}
			},
		},
		{
			name: "another load target means no concurrency target",
			spec: api.AppSpec{Scale: api.Scale{RPS: 50}},
			check: func(t *testing.T, s api.AppSpec) {
				if s.Scale.Concurrency != 0 || s.Scale.RPS != 50 {
					t.Errorf("scale = %+v", s.Scale)
				}
			},
		},
		{
			name: "probe ports follow the app port",
			spec: api.AppSpec{Port: 3000, Probes: api.Probes{
				Startup:  &api.Probe{HTTP: &api.HTTPGetAction{}},
				Liveness: &api.Probe{TCP: &api.TCPSocketAction{}},
			}},
			check: func(t *testing.T, s api.AppSpec) {
				p := s.Probes
				if p.Startup.HTTP.Port != 3000 || p.Startup.HTTP.Path != "/" || p.Liveness.TCP.Port != 3000 || p.Readiness.TCP.Port != 3000 {
					t.Errorf("probe ports = %+v %+v %+v", p.Startup.HTTP, p.Liveness.TCP, p.Readiness.TCP)
				}
				if p.Startup.Period.Duration != time.Second || p.Startup.FailureThreshold != 30 {
					t.Errorf("startup = %+v", p.Startup)
				}
				if p.Liveness.Period.Duration != 10*time.Second || p.Liveness.FailureThreshold != 3 {
					t.Errorf("liveness = %+v", p.Liveness)
				}
			},
		},
		{
			name: "a single traffic target gets all traffic",
			spec: api.AppSpec{Traffic: []api.TrafficTarget{{Revision: "shop-00002"}}},
			check: func(t *testing.T, s api.AppSpec) {
				if s.Traffic[0].Percent != 100 {
					t.Errorf("traffic = %+v", s.Traffic)
				}
			},
		},
		{
			name: "several traffic targets are left alone",
			spec: api.AppSpec{Traffic: []api.TrafficTarget{{Revision: "shop-00002", Percent: 100}, {Latest: true, Tag: "next"}}},
			check: func(t *testing.T, s api.AppSpec) {
				if s.Traffic[0].Percent != 100 || s.Traffic[1].Percent != 0 {
					t.Errorf("traffic = %+v", s.Traffic)
				}
			},
		},
		{
			name: "invalid values are not replaced",
			spec: api.AppSpec{Port: -1, Scale: api.Scale{Min: ptr(-3), Concurrency: -1}, RevisionHistoryLimit: ptr(-1)},
			check: func(t *testing.T, s api.AppSpec) {
				if s.Port != -1 || *s.Scale.Min != -3 || s.Scale.Concurrency != -1 || *s.RevisionHistoryLimit != -1 {
					t.Errorf("invalid values replaced: %+v", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := api.App{Metadata: api.ObjectMeta{Name: "shop"}, Spec: tt.spec}
			SetDefaults(&a)
			if a.APIVersion != api.AppAPIVersion || a.Kind != api.AppKind {
				t.Errorf("apiVersion, kind = %q, %q", a.APIVersion, a.Kind)
			}
			tt.check(t, a.Spec)
			// Idempotent: defaulting a defaulted App changes nothing.
			again := Clone(a)
			SetDefaults(&again)
			if d := Diff(a, again); d != "" {
				t.Errorf("SetDefaults is not idempotent:\n%s", d)
			}
			if h1, h2 := Hash(RevisionSpecOf(a.Spec)), Hash(RevisionSpecOf(again.Spec)); h1 != h2 {
				t.Errorf("SetDefaults is not idempotent on the revision spec")
			}
		})
	}
}

func TestHost(t *testing.T) {
	a := api.App{Metadata: api.ObjectMeta{Name: "shop"}}
	if got := Host(a, ""); got != "shop.localhost" {
		t.Errorf("Host = %q", got)
	}
	if got := Host(a, "apps.example.com"); got != "shop.apps.example.com" {
		t.Errorf("Host = %q", got)
	}
	if got := TagHost(a, "canary", ""); got != "canary-shop.localhost" {
		t.Errorf("TagHost = %q", got)
	}
	a.Spec.Ingress.Host = "shop.example.com"
	if got := Host(a, "apps.example.com"); got != "shop.example.com" {
		t.Errorf("Host = %q", got)
	}
}

func TestCloneSharesNothing(t *testing.T) {
	a := api.App{
		Metadata: api.ObjectMeta{Name: "shop", Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"}},
		Spec:     baseSpec(),
	}
	SetDefaults(&a)
	MarkReady(&a.Status, t0)
	a.Status.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 100}}
	a.Spec.Ingress.TLS = &api.IngressTLS{CertFile: "/c.pem", KeyFile: "/k.pem"}
	c := Clone(a)
	before, _ := MarshalYAML(a)
	c.Metadata.Labels["a"] = "x"
	c.Metadata.Annotations["c"] = "x"
	c.Spec.Command[0] = "x"
	c.Spec.Args[0] = "x"
	c.Spec.Env[0].Value = "x"
	*c.Spec.Scale.Min = 7
	*c.Spec.Scale.Max = 7
	c.Spec.Probes.Readiness.HTTP.Path = "/x"
	c.Spec.Volumes[0].Name = "x"
	c.Spec.Traffic[0].Percent = 7
	c.Spec.Ingress.TLS.CertFile = "/x"
	*c.Spec.RevisionHistoryLimit = 7
	c.Status.Conditions[0].Reason = "x"
	c.Status.Traffic[0].Percent = 7
	after, _ := MarshalYAML(a)
	if string(before) != string(after) {
		t.Errorf("changing the clone changed the original:\n%s", textDiff(string(before), string(after)))
	}
}
