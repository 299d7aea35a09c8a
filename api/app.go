package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The identifiers every App document carries.
const (
	// AppAPIVersion is the apiVersion of App documents.
	AppAPIVersion = "skiff.dev/v1"
	// AppKind is the kind of App documents.
	AppKind = "App"
)

// App is the declarative resource a skiff user writes: an HTTP service
// made of immutable revisions of one container image, behind an ingress
// route, scaled by request load. Users write apiVersion, kind, metadata
// and spec; skiff writes status.
//
// Its YAML form, field names and meanings are a public contract shared
// with the JSON Schema in schema/app.schema.json and the reference in
// docs/app-reference.md; every field has a Kubernetes counterpart listed
// there.
type App struct {
	// APIVersion is always "skiff.dev/v1".
	APIVersion string `json:"apiVersion"`
	// Kind is always "App".
	Kind string `json:"kind"`
	// Metadata names the App and carries its labels and annotations.
	Metadata ObjectMeta `json:"metadata"`
	// Spec is the desired state, written by the user.
	Spec AppSpec `json:"spec"`
	// Status is the observed state, written by skiff. It is ignored when
	// an App is applied.
	Status AppStatus `json:"status,omitzero"`
}

// ObjectMeta is the metadata every skiff resource has, named as in
// Kubernetes.
type ObjectMeta struct {
	// Name identifies the App: a DNS label (lowercase letters, digits and
	// '-', starting with a letter and ending with a letter or digit) of at
	// most 57 characters, so that revision names (NAME-00001) stay valid
	// DNS labels. It must not itself end in '-' and five digits. The name
	// cannot be changed.
	Name string `json:"name"`
	// Labels are key/value pairs for selecting and grouping Apps, with
	// Kubernetes label syntax: keys are [PREFIX/]NAME where NAME is at most
	// 63 characters and PREFIX a DNS subdomain; values are at most 63
	// characters. Changing labels does not create a revision.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are free-form key/value pairs for tools and people, with
	// Kubernetes annotation syntax: label-style keys, values of any text,
	// at most 256 KiB in all. Changing annotations does not create a
	// revision.
	Annotations map[string]string `json:"annotations,omitempty"`
	// UID is set by skiff when the App is first created and never changes;
	// it tells apart two Apps that had the same name at different times.
	UID string `json:"uid,omitempty"`
	// Generation is set by skiff: 1 at creation, incremented on every
	// change to the spec and only then.
	Generation int64 `json:"generation,omitempty"`
	// ResourceVersion is set by skiff and changes on every write of the
	// App (spec, metadata or status); compare it only for equality. An
	// App applied with a resourceVersion is written only if the stored
	// App is still at that version, else the apply fails with a conflict
	// (HTTP 409) and changes nothing: read the App again and retry. An
	// App applied without one replaces the stored spec whatever its
	// version.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// CreationTimestamp is set by skiff when the App is first created.
	CreationTimestamp time.Time `json:"creationTimestamp,omitzero"`
}

// AppSpec is the desired state of an App. The runnable part (image,
// command, args, env, port, resources, probes, volumes) is copied into a
// new immutable Revision whenever it changes; the rest (ingress, scale,
// traffic, revisionHistoryLimit) applies to the App as a whole and can be
// changed without a new revision.
type AppSpec struct {
	// Image is the container image to run: a reference such as
	// "localhost/shop:1.4", "registry.example:5000/shop@sha256:…", or a
	// local image ID ("sha256:…"). Required. A revision records the digest
	// the reference resolved to when it was created, so re-tagging the
	// image does not change running revisions.
	Image string `json:"image"`
	// Command, when set, replaces the image's entrypoint.
	Command []string `json:"command,omitempty"`
	// Args, when set, replaces the image's cmd (the arguments passed to
	// the entrypoint or to Command).
	Args []string `json:"args,omitempty"`
	// Env lists environment variables set in the container, in order,
	// on top of the image's own. Names must be unique.
	Env []EnvVar `json:"env,omitempty"`
	// Port is the TCP port the app listens on for HTTP inside its
	// container; the ingress sends requests there. Default 8080.
	Port int `json:"port,omitempty"`
	// Ingress says how HTTP requests reach the App.
	Ingress Ingress `json:"ingress,omitzero"`
	// Resources limits what one replica may use.
	Resources AppResources `json:"resources,omitzero"`
	// Scale bounds the number of replicas and says what load one replica
	// should take.
	Scale Scale `json:"scale,omitzero"`
	// Probes check the health of each replica.
	Probes Probes `json:"probes,omitzero"`
	// Volumes mounts named volumes into the container. A named volume is
	// created on first use and outlives replicas and revisions.
	Volumes []VolumeMount `json:"volumes,omitempty"`
	// Traffic splits requests between revisions by percent. Default: all
	// traffic to the latest ready revision.
	Traffic []TrafficTarget `json:"traffic,omitempty"`
	// RevisionHistoryLimit is how many revisions that receive no traffic
	// are kept for rollback; older ones are deleted. Revisions named in
	// Traffic are always kept. Default 10.
	RevisionHistoryLimit *int `json:"revisionHistoryLimit,omitempty"`
	// Security says which admission profile the App is checked against.
	Security AppSecurity `json:"security,omitzero"`
	// Identity gives each replica a short-lived signed token naming the
	// App, which other services verify against the daemon's published
	// keys and skiff's API accepts (see docs/identity.md).
	Identity AppIdentity `json:"identity,omitzero"`
	// Network says which other Apps may connect to the App's replicas,
	// and which further networks they join.
	Network AppNetwork `json:"network,omitzero"`
}

// AppIdentity asks for an App identity, as a managed identity or a
// Kubernetes service-account token.
type AppIdentity struct {
	// Enabled gives each replica a JWT at
	// /run/secrets/skiff.dev/identity/token, renewed before it expires.
	Enabled bool `json:"enabled,omitempty"`
	// Audiences are the token's audiences besides "skiff" (skiff's own
	// API): the services it is meant for.
	Audiences []string `json:"audiences,omitempty"`
}

// AppNetwork is the App's place on the network. An App's replicas are on
// skiff's default network, where they accept connections from skiff's
// ingress and probes, from the App's own replicas, and from the replicas
// of the Apps AllowFrom selects; the firewall refuses every other
// connection to them there (from other Apps, plain containers or other
// hosts), counts it in the metric skiff_network_refused_total{app} and
// records a ConnectionRefused event on the App. Requests through the
// ingress are governed by spec.ingress, not by AllowFrom. The further
// Networks a replica joins are segments of their own (a compose project's
// network): every container on such a network reaches the replicas there.
type AppNetwork struct {
	// AllowFrom lists the Apps whose replicas may connect to this App's
	// replicas directly on the default network, on any port. Default:
	// none. Changing it makes no new revision.
	AllowFrom []NetworkPeer `json:"allowFrom,omitempty"`
	// Networks are further networks (made with skiff network create) each
	// replica joins besides the default one, with the names it answers to
	// there. A replica is made only once every network exists; until then
	// the revision is not ready (reason NetworkNotFound). Changing them
	// makes a new revision.
	Networks []AppNetworkAttachment `json:"networks,omitempty"`
}

// AppNetworkAttachment is one further network of an App's replicas.
type AppNetworkAttachment struct {
	// Name of the network: a bridge network, not skiff's default one.
	Name string `json:"name"`
	// Aliases are DNS names the replicas answer to on this network,
	// besides the App's name (for example a compose service's name).
	Aliases []string `json:"aliases,omitempty"`
}

// NetworkPeer selects Apps, by name or by labels: exactly one of App and
// Selector is set.
type NetworkPeer struct {
	// App names one App; it need not exist yet.
	App string `json:"app,omitempty"`
	// Selector selects every App whose labels match it.
	Selector *LabelSelector `json:"selector,omitempty"`
}

// LabelSelector selects objects by their labels, as in Kubernetes.
type LabelSelector struct {
	// MatchLabels are labels an object must all have, with these values.
	// An empty selector selects every object.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Matches reports whether labels has every label of s.
func (s LabelSelector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// AppSecurity is the App's admission settings.
type AppSecurity struct {
	// Profile is the admission profile the App is checked against:
	// "privileged", "baseline" or "restricted", modelled on Kubernetes Pod
	// Security Standards. Default: the daemon's (--security-profile). An
	// App may choose a stricter profile than the daemon's, not a looser one.
	Profile string `json:"profile,omitempty"`
	// RunAsUser is the uid the App's processes run as. Default: the
	// image's user.
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// ReadOnlyRootFilesystem mounts the root filesystem read-only; the
	// App writes to its volumes.
	ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem,omitempty"`
	// Capabilities changes skiff's default capability set.
	Capabilities Capabilities `json:"capabilities,omitzero"`
	// HostUsers, when true, runs the App's replicas in the host's user
	// namespace. Default false: replicas have a user namespace of their
	// own, whose root is an unprivileged range of host ids that the App
	// keeps while it exists (Kubernetes' pod spec.hostUsers).
	HostUsers *bool `json:"hostUsers,omitempty"`
}

// Capabilities are Linux capabilities dropped from and added to the
// default set, by name ("NET_BIND_SERVICE", or "ALL" for every one).
// Drop applies first.
type Capabilities struct {
	// Add are capabilities added to the default set.
	Add []string `json:"add,omitempty"`
	// Drop are capabilities removed from the default set.
	Drop []string `json:"drop,omitempty"`
}

// IsZero reports whether c changes nothing.
func (c Capabilities) IsZero() bool { return len(c.Add) == 0 && len(c.Drop) == 0 }

// EnvVar is one environment variable: a literal Value or a SecretRef,
// not both.
type EnvVar struct {
	// Name of the variable: letters, digits, '_', '-' and '.', not
	// starting with a digit.
	Name string `json:"name"`
	// Value is the literal value.
	Value string `json:"value,omitempty"`
	// SecretRef takes the value from a key of a skiff secret, written
	// "SECRET/KEY" (for example "db/password"). The value is resolved when
	// a replica starts and is never stored in the App or its revisions.
	SecretRef string `json:"secretRef,omitempty"`
}

// Ingress says how HTTP requests reach an App through skiff's ingress
// proxy.
type Ingress struct {
	// Host is the HTTP host name the App answers on. Default
	// "NAME.DOMAIN", where DOMAIN is the daemon's domain ("localhost"
	// unless configured); status.url shows the result.
	Host string `json:"host,omitempty"`
	// PathPrefix restricts the App to request paths under this prefix.
	// Default "/".
	PathPrefix string `json:"pathPrefix,omitempty"`
	// External exposes the App on the ingress listener of every host
	// address. When false (the default) the App is reachable only from
	// this machine: from the loopback address and from other Apps.
	External bool `json:"external,omitempty"`
	// Timeout bounds the time from receiving a request to the end of its
	// response, including a cold start. Default 300s, at most 1h.
	Timeout Duration `json:"timeout,omitzero"`
	// TLS names the certificate the HTTPS ingress serves for the App's
	// host. Unset, the daemon's local CA issues one.
	TLS *IngressTLS `json:"tls,omitempty"`
	// RedirectHTTPS answers the App's plain HTTP requests with a 308
	// redirect to the same URL over HTTPS, when the daemon serves HTTPS
	// (--ingress-tls-addr).
	RedirectHTTPS bool `json:"redirectHTTPS,omitempty"`
}

// IngressTLS names certificate files on the daemon's machine, read by the
// daemon when a client connects (a changed file is read again).
type IngressTLS struct {
	// CertFile is the absolute path of the PEM certificate, followed by
	// its intermediate certificates, for the App's host.
	CertFile string `json:"certFile"`
	// KeyFile is the absolute path of the certificate's PEM private key.
	KeyFile string `json:"keyFile"`
}

// AppResources limits what one replica may use. Each limit is also what
// the replica is guaranteed when exported to Kubernetes (request equals
// limit). Empty means unlimited.
type AppResources struct {
	// CPU is the CPU limit as a quantity: "500m" (half a CPU), "1", "2.5".
	CPU string `json:"cpu,omitempty"`
	// Memory is the memory limit as a quantity: "256Mi", "1Gi", "512M".
	// Going over it kills the replica (OOMKilled). At least 6Mi.
	Memory string `json:"memory,omitempty"`
	// Pids caps the processes and threads of one replica.
	Pids int64 `json:"pids,omitempty"`
}

// Scale bounds the number of replicas of the App's serving revisions and
// sets the load target the autoscaler keeps each replica at. One load
// target applies: concurrency (the default), rps, cpuUtilization or
// memoryUtilization.
type Scale struct {
	// Min is the fewest replicas kept running. 0 allows scale to zero:
	// after IdleTimeout without requests all replicas stop, and the next
	// request starts one (a cold start). Default 1.
	Min *int `json:"min,omitempty"`
	// Max is the most replicas run at once. Default 10, or Min when Min is
	// larger.
	Max *int `json:"max,omitempty"`
	// Concurrency is the target number of in-flight requests per replica.
	// Default 100 when no other target is set.
	Concurrency int `json:"concurrency,omitempty"`
	// RPS is the target number of requests per second per replica, an
	// alternative to Concurrency.
	RPS int `json:"rps,omitempty"`
	// CPUUtilization is the target CPU use per replica in percent of
	// resources.cpu (1..100), an alternative to Concurrency.
	CPUUtilization int `json:"cpuUtilization,omitempty"`
	// MemoryUtilization is the target memory use per replica in percent
	// of resources.memory (1..100), an alternative to Concurrency.
	MemoryUtilization int `json:"memoryUtilization,omitempty"`
	// IdleTimeout is how long an App with min 0 stays up without requests
	// before scaling to zero. Default 60s.
	IdleTimeout Duration `json:"idleTimeout,omitzero"`
	// Prewarm is the number of spare containers of the latest revision
	// kept created but not started, so a scale-up or cold start only has
	// to start one. At most Max. Default 0.
	Prewarm int `json:"prewarm,omitempty"`
}

// Probes check the health of each replica. A replica receives requests
// once its startup probe (if any) and readiness probe have succeeded.
type Probes struct {
	// Startup, when set, runs first until it succeeds; readiness and
	// liveness probes wait for it. A replica whose startup probe fails
	// FailureThreshold times is restarted. Defaults: period 1s, failure
	// threshold 30.
	Startup *Probe `json:"startup,omitempty"`
	// Readiness decides whether a replica receives requests. Default: a
	// TCP connection to spec.port, period 1s, failure threshold 3.
	Readiness *Probe `json:"readiness,omitempty"`
	// Liveness, when set, restarts a replica after FailureThreshold
	// consecutive failures. Defaults: period 10s, failure threshold 3.
	Liveness *Probe `json:"liveness,omitempty"`
}

// Probe is one health check: exactly one of HTTP, TCP or Exec, and when
// and how often to run it.
type Probe struct {
	// HTTP succeeds when a GET request gets a status from 200 to 399.
	// Written as a path ("http: /healthz") or in full.
	HTTP *HTTPGetAction `json:"http,omitempty"`
	// TCP succeeds when a TCP connection opens. Written as a port
	// ("tcp: 8080") or in full.
	TCP *TCPSocketAction `json:"tcp,omitempty"`
	// Exec succeeds when a command run inside the container exits 0.
	Exec *ExecAction `json:"exec,omitempty"`
	// InitialDelay is the wait after the container starts before the
	// first probe. Default 0s.
	InitialDelay Duration `json:"initialDelay,omitzero"`
	// Period is the time between probes, at least 100ms. Default 1s for
	// startup and readiness probes, 10s for liveness probes.
	Period Duration `json:"period,omitzero"`
	// Timeout bounds one probe, at least 100ms. Default 1s.
	Timeout Duration `json:"timeout,omitzero"`
	// SuccessThreshold is the number of consecutive successes after a
	// failure for the probe to count as passing. Default 1; must be 1 for
	// startup and liveness probes.
	SuccessThreshold int `json:"successThreshold,omitempty"`
	// FailureThreshold is the number of consecutive failures for the
	// probe to count as failing. Default 30 for startup probes, 3
	// otherwise.
	FailureThreshold int `json:"failureThreshold,omitempty"`
}

// HTTPGetAction is an HTTP GET health check against the replica.
type HTTPGetAction struct {
	// Path is the request path, starting with '/'. Default "/".
	Path string `json:"path,omitempty"`
	// Port is the container port. Default spec.port.
	Port int `json:"port,omitempty"`
	// Headers are extra request headers.
	Headers []HTTPHeader `json:"headers,omitempty"`
}

// UnmarshalJSON accepts the short form, a path string ("/healthz"), as
// well as the full object.
func (a *HTTPGetAction) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var path string
		if err := json.Unmarshal(b, &path); err != nil {
			return err
		}
		*a = HTTPGetAction{Path: path}
		return nil
	}
	type plain HTTPGetAction
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = HTTPGetAction(p)
	return nil
}

// HTTPHeader is one HTTP request header.
type HTTPHeader struct {
	// Name is the header field name.
	Name string `json:"name"`
	// Value is the header field value.
	Value string `json:"value"`
}

// TCPSocketAction is a TCP connection health check against the replica.
type TCPSocketAction struct {
	// Port is the container port. Default spec.port.
	Port int `json:"port,omitempty"`
}

// UnmarshalJSON accepts the short form, a port number (8080), as well as
// the full object.
func (a *TCPSocketAction) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		var port int
		if err := json.Unmarshal(b, &port); err != nil {
			return err
		}
		*a = TCPSocketAction{Port: port}
		return nil
	}
	type plain TCPSocketAction
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = TCPSocketAction(p)
	return nil
}

// ExecAction is a health check command run inside the container.
type ExecAction struct {
	// Command is the program and its arguments; it is not run through a
	// shell.
	Command []string `json:"command"`
}

// VolumeMount mounts a named volume, or the keys of a secret as files,
// into the App's containers.
type VolumeMount struct {
	// Name of the volume, a DNS label. The volume is created on first use
	// and shared by every replica and revision that mounts it. With
	// Secret, it only names the mount.
	Name string `json:"name"`
	// MountPath is the absolute path inside the container. It must not be
	// "/" or lie under /proc, /sys or /dev.
	MountPath string `json:"mountPath"`
	// ReadOnly mounts the volume read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Secret, when set, mounts the keys of a skiff secret as files in a
	// directory of its own at MountPath, instead of a named volume: on a
	// tmpfs (the values never reach a disk), each file of mode 0400 owned
	// by the container's user, written when the replica starts. The
	// revision pins the secret's version, so a new version of the secret
	// rolls the App out as a new revision.
	Secret *SecretVolume `json:"secret,omitempty"`
}

// SecretVolume names the secret a volume shows and which of its keys.
type SecretVolume struct {
	// Name of the secret (see skiff secret ls).
	Name string `json:"name"`
	// Items picks keys and names their files. Default: every key of the
	// secret, each in a file named after it.
	Items []SecretItem `json:"items,omitempty"`
}

// SecretItem is one key of a secret shown as a file.
type SecretItem struct {
	// Key of the secret.
	Key string `json:"key"`
	// Path is the file's name in the volume's directory (no '/'). Default:
	// the key.
	Path string `json:"path,omitempty"`
}

// TrafficTarget sends a share of the App's requests to one revision. In
// spec.traffic exactly one of Revision and Latest is set; in
// status.traffic Revision is always the resolved name.
type TrafficTarget struct {
	// Revision names a revision of this App ("shop-00003").
	Revision string `json:"revision,omitempty"`
	// Latest follows the latest ready revision: the target moves when a
	// new revision becomes ready. At most one target may set it.
	Latest bool `json:"latest,omitempty"`
	// Percent of requests sent to this target, 0..100. The percents of
	// all targets sum to 100. A single target defaults to 100.
	Percent int `json:"percent"`
	// Tag, when set, also gives this target its own host, "TAG-NAME.DOMAIN",
	// which reaches it whatever its percent (for testing a revision before
	// sending it traffic). A DNS label, unique among targets.
	Tag string `json:"tag,omitempty"`
	// URL is set by skiff in status.traffic for tagged targets.
	URL string `json:"url,omitempty"`
}

// ConditionType names an aspect of a resource's state.
type ConditionType string

// The condition types of an App.
const (
	// ConditionReady is True when the App serves requests as its spec
	// says: every traffic target's revision is ready.
	ConditionReady ConditionType = "Ready"
	// ConditionRolloutInProgress is True while the latest revision is
	// being brought up and traffic moved to it.
	ConditionRolloutInProgress ConditionType = "RolloutInProgress"
	// ConditionDegraded is True when something needs attention (see the
	// Reason), even if the App still serves from an older revision.
	ConditionDegraded ConditionType = "Degraded"
)

// ConditionStatus is the state of a condition.
type ConditionStatus string

// The condition statuses, as in Kubernetes.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition reasons skiff sets. Reasons are CamelCase words a program can
// match; the condition's message explains them to people.
const (
	// ReasonImageNotFound: the image reference does not resolve.
	ReasonImageNotFound = "ImageNotFound"
	// ReasonCrashLoopBackOff: replicas keep exiting and are being
	// restarted with backoff.
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
	// ReasonProbeFailed: a startup or readiness probe keeps failing.
	ReasonProbeFailed = "ProbeFailed"
	// ReasonOOMKilled: replicas were killed for going over
	// resources.memory.
	ReasonOOMKilled = "OOMKilled"
	// ReasonRevisionNotFound: a traffic target names a revision that
	// does not exist.
	ReasonRevisionNotFound = "RevisionNotFound"
	// ReasonSecretNotFound: an env secretRef names a missing secret or key.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonNetworkNotFound: spec.network.networks names a network that
	// does not exist, or that replicas cannot join.
	ReasonNetworkNotFound = "NetworkNotFound"
	// ReasonDeploying: a new revision is starting.
	ReasonDeploying = "Deploying"
)

// Condition is one aspect of a resource's state, as in Kubernetes.
type Condition struct {
	// Type is the aspect: Ready, RolloutInProgress or Degraded.
	Type ConditionType `json:"type"`
	// Status is "True", "False" or "Unknown".
	Status ConditionStatus `json:"status"`
	// Reason is a CamelCase word saying why, for programs.
	Reason string `json:"reason,omitempty"`
	// Message says why, for people.
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when Status last changed.
	LastTransitionTime time.Time `json:"lastTransitionTime,omitzero"`
}

// AppStatus is the observed state of an App, written by skiff.
type AppStatus struct {
	// ObservedGeneration is the metadata.generation this status describes;
	// while it is below metadata.generation, skiff has not yet acted on
	// the latest spec.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are Ready, RolloutInProgress and Degraded.
	Conditions []Condition `json:"conditions,omitempty"`
	// LatestCreatedRevision is the newest revision created from the spec.
	LatestCreatedRevision string `json:"latestCreatedRevision,omitempty"`
	// LatestReadyRevision is the newest revision that became ready.
	LatestReadyRevision string `json:"latestReadyRevision,omitempty"`
	// Traffic is spec.traffic with latest resolved to a revision name and
	// tag URLs filled in: where requests go now.
	Traffic []TrafficTarget `json:"traffic,omitempty"`
	// URL is where the App answers ("http://shop.localhost").
	URL string `json:"url,omitempty"`
	// Replicas counts the App's replicas over all its revisions.
	Replicas ReplicaCounts `json:"replicas,omitzero"`
}

// ReplicaCounts counts replicas.
type ReplicaCounts struct {
	// Desired is how many replicas the autoscaler wants.
	Desired int `json:"desired"`
	// Ready is how many replicas pass their readiness probe.
	Ready int `json:"ready"`
}

// Revision is an immutable snapshot of the runnable part of an App's spec.
// A new one is created each time that part changes.
type Revision struct {
	// Name is "APP-NNNNN", numbered from 00001 in creation order.
	Name string `json:"name"`
	// App is the name of the App the revision belongs to.
	App string `json:"app"`
	// Generation is the App's metadata.generation that created it.
	Generation int64 `json:"generation"`
	// Hash identifies Spec: two revisions with equal hashes run the same
	// thing.
	Hash string `json:"hash"`
	// Created is when the revision was created.
	Created time.Time `json:"created"`
	// Spec is the runnable part of the App's spec at that generation.
	Spec RevisionSpec `json:"spec"`
	// Status is the revision's observed state.
	Status RevisionStatus `json:"status,omitzero"`
}

// RevisionSpec is the runnable part of an AppSpec: what a replica is made
// of. The fields mean what they mean in AppSpec.
type RevisionSpec struct {
	Image     string        `json:"image"`
	Command   []string      `json:"command,omitempty"`
	Args      []string      `json:"args,omitempty"`
	Env       []EnvVar      `json:"env,omitempty"`
	Port      int           `json:"port,omitempty"`
	Resources AppResources  `json:"resources,omitzero"`
	Probes    Probes        `json:"probes,omitzero"`
	Volumes   []VolumeMount `json:"volumes,omitempty"`
	// SecretVersions pins the version of each secret the env uses, as it
	// was when the revision was made: a new version of a secret makes a
	// new revision, and replicas of a revision all see the same values.
	SecretVersions map[string]int64 `json:"secretVersions,omitempty"`
	// Security is the runnable part of the App's security settings (its
	// profile is not part of a revision).
	Security AppSecurity `json:"security,omitzero"`
	Identity AppIdentity `json:"identity,omitzero"`
	// Networks are the further networks of spec.network.networks.
	Networks []AppNetworkAttachment `json:"networks,omitempty"`
}

// RevisionStatus is the observed state of a revision.
type RevisionStatus struct {
	// ImageDigest is the manifest digest Spec.Image resolved to when the
	// revision was created; every replica runs exactly this image.
	ImageDigest string `json:"imageDigest,omitempty"`
	// Ready is true when at least one replica passes its readiness probe,
	// or when the revision is scaled to zero after having been ready.
	Ready bool `json:"ready"`
	// Reason says why the revision is not ready, as in Condition.Reason.
	Reason string `json:"reason,omitempty"`
	// Message explains Reason.
	Message string `json:"message,omitempty"`
	// Replicas counts the revision's replicas.
	Replicas ReplicaCounts `json:"replicas,omitzero"`
}

// ReplicaState is the lifecycle stage of a replica.
type ReplicaState string

// The replica states.
const (
	// ReplicaPrewarmed: the container is created but not started.
	ReplicaPrewarmed ReplicaState = "prewarmed"
	// ReplicaStarting: the container runs but has not passed its
	// readiness probe yet.
	ReplicaStarting ReplicaState = "starting"
	// ReplicaRunning: the container runs; Ready says if it takes requests.
	ReplicaRunning ReplicaState = "running"
	// ReplicaTerminating: the container is draining and being stopped.
	ReplicaTerminating ReplicaState = "terminating"
	// ReplicaFailed: the container exited and waits for its restart.
	ReplicaFailed ReplicaState = "failed"
)

// Replica is one container of a revision.
type Replica struct {
	// Name is the container name.
	Name string `json:"name"`
	// Revision is the revision the replica runs.
	Revision string `json:"revision"`
	// App is the App the revision belongs to.
	App string `json:"app"`
	// ContainerID is the runtime's ID of the container.
	ContainerID string `json:"containerID,omitempty"`
	// IP is the replica's address on skiff's network.
	IP string `json:"ip,omitempty"`
	// Ready is true while the replica passes its readiness probe and
	// receives requests.
	Ready bool `json:"ready"`
	// State is prewarmed, starting, running, terminating or failed.
	State ReplicaState `json:"state"`
	// Restarts counts the times the container was restarted.
	Restarts int `json:"restarts"`
	// Created is when the replica was created.
	Created time.Time `json:"created"`
}

// Duration is a length of time written as a string such as "30s", "1m30s"
// or "500ms" (Go's time.ParseDuration syntax) in YAML and JSON.
type Duration struct {
	time.Duration
}

// String returns the shortest exact form: "1m", "90s", "1h30m", "250ms".
func (d Duration) String() string {
	v := d.Duration
	if v == 0 {
		return "0s"
	}
	if v%time.Millisecond != 0 || v < 0 {
		return v.String()
	}
	if v%time.Second != 0 {
		return fmt.Sprintf("%dms", v/time.Millisecond)
	}
	var b strings.Builder
	if h := v / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		v -= h * time.Hour
	}
	if m := v / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		v -= m * time.Minute
	}
	if s := v / time.Second; s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// errDurationSyntax is returned for anything but a duration string.
var errDurationSyntax = errors.New(`must be a duration such as "30s", "1m30s" or "500ms"`)

// UnmarshalJSON reads a duration string; numbers are refused, since a
// bare number has no unit.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errDurationSyntax
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errDurationSyntax
	}
	d.Duration = v
	return nil
}
