package kube

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
)

// genApp makes a valid App from a seed, with every field drawn, and the
// revisions its traffic names.
func genApp(r *rand.Rand, i int) (api.App, []api.Revision) {
	name := fmt.Sprintf("app%d", i)
	pick := func(n int) bool { return r.IntN(n) == 0 }
	sec := func(max int) api.Duration { return api.Duration{Duration: time.Duration(1+r.IntN(max)) * time.Second} }
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind}
	a.Metadata.Name = name
	if pick(2) {
		a.Metadata.Labels = map[string]string{"team": fmt.Sprintf("t%d", r.IntN(5))}
	}
	if pick(2) {
		a.Metadata.Annotations = map[string]string{"example.com/owner": fmt.Sprintf("someone %d", r.IntN(9))}
	}
	s := &a.Spec
	s.Image = fmt.Sprintf("registry.example/%s:%d", name, r.IntN(9))
	if pick(2) {
		s.Command = []string{"/bin/" + name}
	}
	if pick(2) {
		s.Args = []string{"--x", fmt.Sprint(r.IntN(100))}
	}
	if pick(2) {
		s.Env = append(s.Env, api.EnvVar{Name: "MODE", Value: "v" + fmt.Sprint(r.IntN(9))})
	}
	if pick(2) {
		s.Env = append(s.Env, api.EnvVar{Name: "TOKEN", SecretRef: "creds/token"})
	}
	if pick(2) {
		s.Port = 1024 + r.IntN(60000)
	}
	in := &s.Ingress
	in.External = pick(2)
	if pick(2) {
		in.Host = name + ".example.com"
	}
	if pick(3) {
		in.PathPrefix = "/p" + fmt.Sprint(r.IntN(9))
	}
	if pick(2) {
		in.Timeout = sec(600)
	}
	if pick(4) {
		in.TLS = &api.IngressTLS{CertFile: "/etc/c.pem", KeyFile: "/etc/k.pem"}
	}
	in.RedirectHTTPS = pick(4)
	if pick(2) {
		s.Resources.CPU = []string{"250m", "1", "2500m"}[r.IntN(3)]
		s.Resources.Memory = []string{"64Mi", "1Gi", "512M"}[r.IntN(3)]
	}
	if pick(3) {
		s.Resources.Pids = int64(10 + r.IntN(500))
	}
	sc := &s.Scale
	if pick(2) {
		sc.Min = ptr(r.IntN(3))
		sc.Max = ptr(*sc.Min + 1 + r.IntN(5))
	}
	switch r.IntN(5) {
	case 0:
		sc.Concurrency = 1 + r.IntN(200)
	case 1:
		sc.RPS = 1 + r.IntN(200)
	case 2:
		if s.Resources.CPU != "" {
			sc.CPUUtilization = 1 + r.IntN(100)
		}
	case 3:
		if s.Resources.Memory != "" {
			sc.MemoryUtilization = 1 + r.IntN(100)
		}
	}
	if pick(2) {
		sc.IdleTimeout = sec(300)
	}
	if pick(3) {
		sc.Prewarm = 1
	}
	genRunnable(r, s)
	genNetwork(r, &a)
	return a, genTraffic(r, &a)
}

// genNetwork draws spec.network.allowFrom: Apps by name (the App itself
// among them), by labels, and every App.
func genNetwork(r *rand.Rand, a *api.App) {
	for range r.IntN(4) {
		switch r.IntN(4) {
		case 0:
			a.Spec.Network.AllowFrom = append(a.Spec.Network.AllowFrom, api.NetworkPeer{App: fmt.Sprintf("app%d", r.IntN(9))})
		case 1:
			a.Spec.Network.AllowFrom = append(a.Spec.Network.AllowFrom, api.NetworkPeer{App: a.Metadata.Name})
		case 2:
			a.Spec.Network.AllowFrom = append(a.Spec.Network.AllowFrom, api.NetworkPeer{Selector: &api.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("t%d", r.IntN(5))}}})
		case 3:
			a.Spec.Network.AllowFrom = append(a.Spec.Network.AllowFrom, api.NetworkPeer{Selector: &api.LabelSelector{}})
		}
	}
}

// genRunnable draws the probes, volumes and security settings of s.
func genRunnable(r *rand.Rand, s *api.AppSpec) {
	pick := func(n int) bool { return r.IntN(n) == 0 }
	sec := func(max int) api.Duration { return api.Duration{Duration: time.Duration(1+r.IntN(max)) * time.Second} }
	if pick(2) {
		s.Probes.Readiness = &api.Probe{HTTP: &api.HTTPGetAction{Path: "/ready", Headers: []api.HTTPHeader{{Name: "X-A", Value: "b"}}}, Period: sec(5), FailureThreshold: 1 + r.IntN(5)}
	}
	if pick(2) {
		s.Probes.Liveness = &api.Probe{TCP: &api.TCPSocketAction{}, InitialDelay: sec(9), Timeout: sec(3)}
	}
	if pick(2) {
		s.Probes.Startup = &api.Probe{Exec: &api.ExecAction{Command: []string{"/ok"}}, FailureThreshold: 10}
	}
	if pick(2) {
		s.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: pick(2)}}
	}
	if pick(2) {
		s.RevisionHistoryLimit = ptr(r.IntN(20))
	}
	if pick(2) {
		s.Security.Profile = []string{"privileged", "baseline", "restricted"}[r.IntN(3)]
	}
	if pick(2) {
		s.Security.RunAsUser = ptr(int64(1000 + r.IntN(1000)))
	}
	s.Security.ReadOnlyRootFilesystem = pick(2)
	if pick(3) {
		s.Security.HostUsers = ptr(true)
	}
	if pick(2) {
		s.Identity.Enabled = true
		s.Identity.Audiences = [][]string{nil, {"https://a.example"}, {"x", "y"}}[r.IntN(3)]
	}
	if pick(2) {
		s.Security.Capabilities = api.Capabilities{Add: []string{"NET_BIND_SERVICE"}, Drop: []string{"ALL"}}
	}
}

// genTraffic draws the traffic of a: the latest revision, or a split
// with older ones, and returns those older revisions.
func genTraffic(r *rand.Rand, a *api.App) []api.Revision {
	name, s := a.Metadata.Name, &a.Spec
	latestN := 1 + r.IntN(5)
	var revs []api.Revision
	switch r.IntN(4) {
	case 0:
		s.Traffic = []api.TrafficTarget{{Latest: true, Percent: 100, Tag: "cur"}}
	case 1:
		if latestN > 2 {
			old := app.RevisionName(name, latestN-1)
			older := app.RevisionName(name, latestN-2)
			s.Traffic = []api.TrafficTarget{{Revision: old, Percent: 60}, {Revision: older, Percent: 30, Tag: "old"}, {Latest: true, Percent: 10}}
			for _, n := range []string{older, old} {
				revs = append(revs, api.Revision{Name: n, App: name, Spec: api.RevisionSpec{Image: "registry.example/old:" + n}})
			}
		}
	case 2:
		if latestN > 1 {
			old := app.RevisionName(name, latestN-1)
			s.Traffic = []api.TrafficTarget{{Revision: old, Percent: 100}, {Latest: true, Percent: 0, Tag: "next"}}
			revs = append(revs, api.Revision{Name: old, App: name, Spec: api.RevisionSpec{Image: "registry.example/old:1"}})
		}
	}
	a.Status.LatestCreatedRevision = app.RevisionName(name, latestN)
	return revs
}

// TestRoundTrip checks that App -> export -> YAML -> import gives back
// the App's spec, labels and annotations, for both flavors, over
// generated Apps.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2026))
	for i := range 300 {
		a, revs := genApp(r, i)
		if err := app.Validate(withDefaults(a)).Err(); err != nil {
			t.Fatalf("generated app %d is invalid: %v", i, err)
		}
		variants := []Options{{Flavor: Plain}, {Flavor: Knative}}
		if len(a.Spec.Traffic) == 0 {
			// An Ingress has no weights: only Apps without a split
			// come back whole.
			variants = append(variants, Options{Flavor: Plain, Ingress: true})
		}
		for _, opts := range variants {
			fl := string(opts.Flavor)
			if opts.Ingress {
				fl += "+ingress"
			}
			opts.Revisions = map[string][]api.Revision{a.Metadata.Name: revs}
			objs, _, err := Export([]api.App{a}, opts)
			if err != nil {
				t.Fatalf("app %d %s: export: %v", i, fl, err)
			}
			y, err := EncodeYAML(objs)
			if err != nil {
				t.Fatal(err)
			}
			us, err := DecodeManifests(bytes.NewReader(y))
			if err != nil {
				t.Fatal(err)
			}
			got, warns, err := Import(us)
			if err != nil {
				t.Fatalf("app %d %s: import: %v\n%s", i, fl, err, y)
			}
			if len(got) != 1 {
				t.Fatalf("app %d %s: import made %d Apps, want 1", i, fl, len(got))
			}
			want := withDefaults(a)
			want.Status = api.AppStatus{}
			if !reflect.DeepEqual(got[0].Spec, want.Spec) || !reflect.DeepEqual(got[0].Metadata, want.Metadata) {
				gy, _ := app.MarshalYAML(got[0])
				wy, _ := app.MarshalYAML(want)
				t.Fatalf("app %d %s: round trip differs:\n--- want\n%s\n--- got\n%s\n--- export\n%s\nwarnings: %v", i, fl, wy, gy, y, warns)
			}
		}
	}
}

func withDefaults(a api.App) api.App {
	a = app.Clone(a)
	app.SetDefaults(&a)
	return a
}
