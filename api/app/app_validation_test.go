package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// validApp is a defaulted, valid App to break one rule at a time.
func validApp() api.App {
	a := api.App{Metadata: api.ObjectMeta{Name: "shop"}, Spec: baseSpec()}
	SetDefaults(&a)
	return a
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(a *api.App)
		want   []string // "path: message", in order
	}{
		{name: "valid", change: func(a *api.App) {}},
		{name: "scale to zero with prewarm", change: func(a *api.App) { a.Spec.Scale.Min = ptr(0); a.Spec.Scale.Prewarm = 5 }},
		{name: "tag-only target at 0 percent", change: func(a *api.App) {
			a.Spec.Traffic = append(a.Spec.Traffic, api.TrafficTarget{Revision: "shop-00001", Tag: "old"})
		}},
		{name: "image ID", change: func(a *api.App) { a.Spec.Image = "sha256:" + strings.Repeat("ab", 32) }},
		{name: "image with host, port, path, tag and digest", change: func(a *api.App) {
			a.Spec.Image = "registry.local:5000/a/b_c/d-e:v1.2@sha256:" + strings.Repeat("0", 64)
		}},
		{name: "the issue's example", change: func(a *api.App) {
			a.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 50}, {Latest: true, Percent: 150}}
		}, want: []string{"spec.traffic[1].percent: must be 0..100"}},
		{name: "wrong apiVersion and kind", change: func(a *api.App) { a.APIVersion = "v1"; a.Kind = "Pod" },
			want: []string{"apiVersion: must be skiff.dev/v1", "kind: must be App"}},
		{name: "missing name", change: func(a *api.App) {
			a.Metadata.Name = ""
			a.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 100}}
		}, want: []string{"metadata.name: required"}},
		{name: "name starting with a digit", change: func(a *api.App) { a.Metadata.Name = "1shop"; a.Spec.Traffic = nil },
			want: []string{"metadata.name: must be a DNS label: at most 57 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"}},
		{name: "name of 57 characters", change: func(a *api.App) { a.Metadata.Name = "a" + strings.Repeat("b", 56); a.Spec.Traffic = nil }},
		{name: "missing image", change: func(a *api.App) { a.Spec.Image = "" },
			want: []string{"spec.image: required: the container image to run, such as localhost/shop:1.4"}},
		{name: "image with spaces", change: func(a *api.App) { a.Spec.Image = "local host/shop" },
			want: []string{`spec.image: must be an image reference such as "localhost/shop:1.4" or "registry:5000/shop@sha256:…"`}},
		{name: "NUL in args", change: func(a *api.App) { a.Spec.Args = []string{"a\x00b"} },
			want: []string{"spec.args[0]: must not contain NUL bytes"}},
		{name: "port zero", change: func(a *api.App) { a.Spec.Port = 0 },
			want: []string{"spec.port: must be 1..65535"}},
		{name: "port zero with a defaulted probe port", change: func(a *api.App) {
			a.Spec.Port = 0
			a.Spec.Probes.Readiness.HTTP.Port = 0
		}, want: []string{"spec.port: must be 1..65535"}},
		{name: "memory below the minimum", change: func(a *api.App) { a.Spec.Resources.Memory = "5Mi" },
			want: []string{"spec.resources.memory: must be at least 6Mi"}},
		{name: "memory of exactly the minimum", change: func(a *api.App) { a.Spec.Resources.Memory = "6Mi" }},
		{name: "max below min", change: func(a *api.App) { a.Spec.Scale.Min = ptr(6) },
			want: []string{"spec.scale.max: must be at least min (6)"}},
		{name: "min equal to max", change: func(a *api.App) { a.Spec.Scale.Min = ptr(5) }},
		{name: "two load targets", change: func(a *api.App) { a.Spec.Scale.RPS = 10 },
			want: []string{"spec.scale: set only one of concurrency, rps, cpuUtilization and memoryUtilization"}},
		{name: "cpu utilisation with a cpu limit", change: func(a *api.App) { a.Spec.Scale.Concurrency = 0; a.Spec.Scale.CPUUtilization = 80 }},
		{name: "memory utilisation without a memory limit", change: func(a *api.App) {
			a.Spec.Resources.Memory = ""
			a.Spec.Scale.Concurrency = 0
			a.Spec.Scale.MemoryUtilization = 80
		}, want: []string{"spec.scale.memoryUtilization: needs spec.resources.memory: utilisation is a percent of it"}},
		{name: "two probe actions", change: func(a *api.App) { a.Spec.Probes.Readiness.TCP = &api.TCPSocketAction{Port: 1} },
			want: []string{"spec.probes.readiness: must set exactly one of http, tcp and exec, got 2"}},
		{name: "readiness success threshold above 1", change: func(a *api.App) { a.Spec.Probes.Readiness.SuccessThreshold = 3 }},
		{name: "probe period too short", change: func(a *api.App) { a.Spec.Probes.Readiness.Period.Duration = 50 * time.Millisecond },
			want: []string{"spec.probes.readiness.period: must be at least 100ms"}},
		{name: "volume under /dev", change: func(a *api.App) { a.Spec.Volumes[0].MountPath = "/dev/shm" },
			want: []string{"spec.volumes[0].mountPath: must not be under /proc, /sys or /dev"}},
		{name: "volume under a directory named like /dev", change: func(a *api.App) { a.Spec.Volumes[0].MountPath = "/devices" }},
		{name: "traffic to another app", change: func(a *api.App) { a.Spec.Traffic = []api.TrafficTarget{{Revision: "cart-00001", Percent: 100}} },
			want: []string{"spec.traffic[0].revision: must be a revision of this app (shop-NNNNN), not of cart"}},
		{name: "traffic of another app whose name ends like ours", change: func(a *api.App) {
			a.Spec.Traffic = []api.TrafficTarget{{Revision: "big-shop-00001", Percent: 100}}
		}, want: []string{"spec.traffic[0].revision: must be a revision of this app (shop-NNNNN), not of big-shop"}},
		{name: "traffic not summing to 100", change: func(a *api.App) {
			a.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 50}, {Latest: true, Percent: 49}}
		}, want: []string{"spec.traffic: percents must sum to 100, got 99"}},
		{name: "tag too long for a host name", change: func(a *api.App) { a.Spec.Traffic[0].Tag = "t" + strings.Repeat("x", 58) },
			want: []string{"spec.traffic[0].tag: is too long: TAG-NAME must be at most 63 characters"}},
		{name: "revision history limit of 0", change: func(a *api.App) { a.Spec.RevisionHistoryLimit = ptr(0) }},
		{name: "request timeout of an hour", change: func(a *api.App) { a.Spec.Ingress.Timeout.Duration = time.Hour }},
		{name: "ingress certificate files", change: func(a *api.App) {
			a.Spec.Ingress.TLS = &api.IngressTLS{CertFile: "/etc/ssl/shop.pem", KeyFile: "/etc/ssl/shop.key"}
			a.Spec.Ingress.RedirectHTTPS = true
		}},
		{name: "ingress certificate files relative or missing", change: func(a *api.App) {
			a.Spec.Ingress.TLS = &api.IngressTLS{CertFile: "shop.pem"}
		}, want: []string{
			"spec.ingress.tls.certFile: must be an absolute path on the daemon's machine, such as /etc/ssl/shop.pem",
			"spec.ingress.tls.keyFile: is required: the absolute path of a PEM file on the daemon's machine (or remove tls to use the local CA)",
		}},
		{name: "annotations too large", change: func(a *api.App) {
			a.Metadata.Annotations = map[string]string{"big": strings.Repeat("x", 256<<10)}
		}, want: []string{"metadata.annotations: must total at most 256 KiB, got 262147 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validApp()
			tt.change(&a)
			before, _ := MarshalYAML(a)
			errs := Validate(a)
			var got []string
			for _, e := range errs {
				got = append(got, e.Path+": "+e.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			err := errs.Err()
			if (err == nil) != (len(tt.want) == 0) {
				t.Errorf("Err() = %v with %d problems", err, len(errs))
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("Err() is not ErrInvalid: %v", err)
			}
			if after, _ := MarshalYAML(a); string(after) != string(before) {
				t.Error("Validate changed the App")
			}
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{Path: "spec.port", Message: "must be 1..65535"}, "spec.port: must be 1..65535"},
		{FieldError{Line: 7, Path: "spec.port", Message: "m"}, "line 7: spec.port: m"},
		{FieldError{Document: 2, Line: 7, Path: "spec.replicas", Message: "unknown field"}, "document 2: line 7: spec.replicas: unknown field"},
		{FieldError{Document: 3, Message: "malformed YAML"}, "document 3: malformed YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	if (FieldErrors{}).Err() != nil || FieldErrors(nil).Err() != nil {
		t.Error("an empty list is an error")
	}
}
