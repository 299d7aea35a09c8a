package app

import (
	"time"

	"skiff.dev/skiff/api"
)

// The defaults SetDefaults fills in. docs/app-reference.md explains each
// choice.
const (
	// DefaultPort is the port an app listens on, as in Knative and Cloud
	// Run.
	DefaultPort = 8080
	// DefaultMinScale keeps one replica running: an App behaves like a
	// Kubernetes Deployment (no cold starts, background work keeps
	// running) unless scale.min: 0 asks for scale to zero.
	DefaultMinScale = 1
	// DefaultMaxScale bounds replicas on a small machine; raised to min
	// when min is larger.
	DefaultMaxScale = 10
	// DefaultConcurrency is the target in-flight requests per replica,
	// Knative's default target.
	DefaultConcurrency = 100
	// DefaultIdleTimeout is how long an App with min 0 idles before it
	// scales to zero.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultRequestTimeout bounds one request, as Knative's and Cloud
	// Run's default.
	DefaultRequestTimeout = 300 * time.Second
	// DefaultPathPrefix routes every path to the App.
	DefaultPathPrefix = "/"
	// DefaultRevisionHistoryLimit is how many revisions without traffic
	// are kept, as for a Kubernetes Deployment's ReplicaSets.
	DefaultRevisionHistoryLimit = 10

	// DefaultProbeTimeout is Kubernetes' probe timeout.
	DefaultProbeTimeout = time.Second
	// DefaultReadinessPeriod and DefaultStartupPeriod are shorter than
	// Kubernetes' 10s: on one machine a probe costs little, and a replica
	// that is found ready sooner takes traffic sooner.
	DefaultReadinessPeriod = time.Second
	DefaultStartupPeriod   = time.Second
	// DefaultLivenessPeriod is Kubernetes' period: a liveness failure
	// restarts the replica, so it is not hurried.
	DefaultLivenessPeriod = 10 * time.Second
	// DefaultFailureThreshold is Kubernetes' failure threshold.
	DefaultFailureThreshold = 3
	// DefaultStartupFailureThreshold gives an app 30 probe periods (30s
	// with the default period) to start.
	DefaultStartupFailureThreshold = 30
)

// SetDefaults fills in every field of app the user left empty, in place.
// It is idempotent and never replaces a value the user set, even an
// invalid one (Validate reports those). The ingress host is not defaulted
// in the spec: it depends on the daemon's domain (see Host).
func SetDefaults(app *api.App) {
	if app.APIVersion == "" {
		app.APIVersion = api.AppAPIVersion
	}
	if app.Kind == "" {
		app.Kind = api.AppKind
	}
	s := &app.Spec
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	setProbesDefaults(&s.Probes, s.Port)
	setIngressDefaults(&s.Ingress)
	setScaleDefaults(&s.Scale)
	if len(s.Traffic) == 0 {
		s.Traffic = []api.TrafficTarget{{Latest: true, Percent: 100}}
	} else if len(s.Traffic) == 1 && s.Traffic[0].Percent == 0 {
		s.Traffic[0].Percent = 100
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr(DefaultRevisionHistoryLimit)
	}
}

// setRevisionDefaults applies to a revision spec the defaults SetDefaults
// applies to the same fields of an App spec.
func setRevisionDefaults(rs *api.RevisionSpec) {
	if rs.Port == 0 {
		rs.Port = DefaultPort
	}
	setProbesDefaults(&rs.Probes, rs.Port)
}

func setIngressDefaults(in *api.Ingress) {
	if in.PathPrefix == "" {
		in.PathPrefix = DefaultPathPrefix
	}
	if in.Timeout.Duration == 0 {
		in.Timeout.Duration = DefaultRequestTimeout
	}
}

func setScaleDefaults(sc *api.Scale) {
	if sc.Min == nil {
		sc.Min = ptr(DefaultMinScale)
	}
	if sc.Max == nil {
		sc.Max = ptr(max(DefaultMaxScale, *sc.Min))
	}
	if sc.Concurrency == 0 && sc.RPS == 0 && sc.CPUUtilization == 0 && sc.MemoryUtilization == 0 {
		sc.Concurrency = DefaultConcurrency
	}
	if sc.IdleTimeout.Duration == 0 {
		sc.IdleTimeout.Duration = DefaultIdleTimeout
	}
}

// probeKind tells the three probes apart for their defaults and rules.
type probeKind int

const (
	startupProbe probeKind = iota
	readinessProbe
	livenessProbe
)

func (k probeKind) String() string {
	return [...]string{"startup", "readiness", "liveness"}[k]
}

func setProbesDefaults(p *api.Probes, port int) {
	if p.Readiness == nil {
		p.Readiness = &api.Probe{TCP: &api.TCPSocketAction{}}
	}
	setProbeDefaults(p.Startup, startupProbe, port)
	setProbeDefaults(p.Readiness, readinessProbe, port)
	setProbeDefaults(p.Liveness, livenessProbe, port)
}

func setProbeDefaults(p *api.Probe, kind probeKind, port int) {
	if p == nil {
		return
	}
	if p.HTTP != nil {
		if p.HTTP.Path == "" {
			p.HTTP.Path = "/"
		}
		if p.HTTP.Port == 0 {
			p.HTTP.Port = port
		}
	}
	if p.TCP != nil && p.TCP.Port == 0 {
		p.TCP.Port = port
	}
	if p.Timeout.Duration == 0 {
		p.Timeout.Duration = DefaultProbeTimeout
	}
	if p.Period.Duration == 0 {
		p.Period.Duration = map[probeKind]time.Duration{
			startupProbe:   DefaultStartupPeriod,
			readinessProbe: DefaultReadinessPeriod,
			livenessProbe:  DefaultLivenessPeriod,
		}[kind]
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultFailureThreshold
		if kind == startupProbe {
			p.FailureThreshold = DefaultStartupFailureThreshold
		}
	}
}

func ptr[T any](v T) *T { return &v }
