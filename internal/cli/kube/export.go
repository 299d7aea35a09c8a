package kube

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// Labels every exported object carries.
const (
	// LabelApp names the App an object was made from.
	LabelApp = "skiff.dev/app"
	// LabelRevision names the revision of a Deployment, its pods, its
	// Service and its HorizontalPodAutoscaler.
	LabelRevision = "skiff.dev/revision"
	// LabelManagedBy is Kubernetes' recommended label; its value is
	// ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "skiff"
	// LabelTag marks the HTTPRoute or Ingress rule of a traffic tag.
	LabelTag = "skiff.dev/tag"
)

// Annotations that keep App fields without a Kubernetes counterpart, so
// that an import gets them back. Kubernetes ignores them.
const (
	annoPrefix = "skiff.dev/"
	// AnnotationLatest marks the Deployment of the App's latest revision:
	// the one made from its current spec.
	AnnotationLatest       = annoPrefix + "latest"
	annoPids               = annoPrefix + "pids"
	annoPrewarm            = annoPrefix + "prewarm"
	annoMinScale           = annoPrefix + "min-scale"
	annoIdleTimeout        = annoPrefix + "idle-timeout"
	annoTimeout            = annoPrefix + "timeout"
	annoProfile            = annoPrefix + "security-profile"
	annoTLSCert            = annoPrefix + "tls-cert-file"
	annoTLSKey             = annoPrefix + "tls-key-file"
	annoRedirectHTTPS      = annoPrefix + "redirect-https"
	annoImage              = annoPrefix + "image"
	annoExternal           = annoPrefix + "external"
	annoPathPrefix         = annoPrefix + "path-prefix"
	annoHost               = annoPrefix + "host"
	annoRevisionHistory    = annoPrefix + "revision-history-limit"
	annoConcurrency        = annoPrefix + "concurrency"
	annoRPS                = annoPrefix + "rps"
	containerName          = "app"
	defaultGateway         = "skiff"
	defaultVolumeSize      = "1Gi"
	portName               = "http"
	knativeVisibility      = "networking.knative.dev/visibility"
	knativeVisibilityLocal = "cluster-local"
)

// Flavor chooses the kind of objects an export makes.
type Flavor string

// The flavors.
const (
	// Plain makes Deployments, Services, HorizontalPodAutoscalers and
	// HTTPRoutes (or Ingresses): plain Kubernetes plus the Gateway API.
	Plain Flavor = "plain"
	// Knative makes one serving.knative.dev/v1 Service per App.
	Knative Flavor = "knative"
)

// Options says how to export.
type Options struct {
	// Flavor is Plain (the default when empty) or Knative.
	Flavor Flavor
	// Namespace is set on every object; empty leaves it unset.
	Namespace string
	// Ingress makes a networking.k8s.io/v1 Ingress instead of a Gateway
	// API HTTPRoute (Plain only).
	Ingress bool
	// Gateway is the Gateway an external App's HTTPRoute attaches to,
	// "NAME" or "NAMESPACE/NAME". Default "skiff".
	Gateway string
	// Domain, when set, makes the default host of an App without
	// spec.ingress.host ("NAME.DOMAIN") and of its tags explicit.
	Domain string
	// IncludeSecrets exports the secrets the Apps' env refers to as
	// Secrets, with the values in Secrets. Without it no secret value is
	// exported and each secret is named in a Warning.
	IncludeSecrets bool
	// Secrets holds secret values by secret name and key.
	Secrets map[string]map[string][]byte
	// Revisions holds each App's revisions by App name, as the daemon
	// lists them. An App without revisions (read from a file) exports its
	// spec as its only revision, named after status.latestCreatedRevision
	// or NAME-00001.
	Revisions map[string][]api.Revision
}

// Warning is an App field the export could not translate, or translated
// with a loss, or something an import could not express.
type Warning struct {
	// App names the App.
	App string
	// Field is the App field path ("spec.resources.pids") or, on import,
	// the Kubernetes object and field.
	Field string
	// Message says what happened and what to do.
	Message string
}

// String returns "app NAME: FIELD: MESSAGE".
func (w Warning) String() string {
	return fmt.Sprintf("app %s: %s: %s", w.App, w.Field, w.Message)
}

// Export translates apps into Kubernetes objects; see the package
// documentation for the contract. apps are not changed.
func Export(apps []api.App, opts Options) ([]runtime.Object, []Warning, error) {
	switch opts.Flavor {
	case "":
		opts.Flavor = Plain
	case Plain, Knative:
	default:
		return nil, nil, errdefs.Invalid("unknown flavor %q: use plain or knative", opts.Flavor)
	}
	if opts.Gateway == "" {
		opts.Gateway = defaultGateway
	}
	var objs []runtime.Object
	var warns []Warning
	shared := map[string]bool{} // Secrets and PVCs already made, by kind/name
	for _, a := range apps {
		x, err := newExporter(a, opts)
		if err != nil {
			return nil, nil, err
		}
		if opts.Flavor == Knative {
			err = x.knative()
		} else {
			err = x.plain()
		}
		if err != nil {
			return nil, nil, err
		}
		for _, o := range x.objects() {
			k := o.GetObjectKind().GroupVersionKind().Kind
			if k == "Secret" || k == "PersistentVolumeClaim" {
				// Named volumes and secrets are shared between Apps:
				// the first App that uses one makes it.
				if shared[k+"/"+objectName(o)] {
					continue
				}
				shared[k+"/"+objectName(o)] = true
			}
			objs = append(objs, o)
		}
		warns = append(warns, x.warns...)
	}
	return objs, uniqueWarnings(warns), nil
}

// uniqueWarnings drops repeated warnings (one per revision), keeping the
// first of each.
func uniqueWarnings(ws []Warning) []Warning {
	seen := map[Warning]bool{}
	out := ws[:0]
	for _, w := range ws {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// exporter holds one App's export while it is built.
type exporter struct {
	app     api.App // defaulted copy
	opts    Options
	revs    map[string]api.Revision
	latest  string // the latest revision: the current spec
	targets []app.Target
	warns   []Warning
	kinds   map[string][]runtime.Object // by kind, in output order
}

func newExporter(a api.App, opts Options) (*exporter, error) {
	a = app.Clone(a)
	app.SetDefaults(&a)
	if err := app.Validate(a).Err(); err != nil {
		return nil, fmt.Errorf("app %s: %w", a.Metadata.Name, err)
	}
	x := &exporter{app: a, opts: opts, revs: map[string]api.Revision{}, kinds: map[string][]runtime.Object{}}
	for _, r := range opts.Revisions[a.Metadata.Name] {
		x.revs[r.Name] = r
	}
	x.latest = latestRevision(a, opts.Revisions[a.Metadata.Name])
	if r, ok := x.revs[x.latest]; !ok || r.Hash != app.Hash(app.RevisionSpecOf(a.Spec)) {
		// The spec is newer than any revision the daemon made (or there
		// are none): it is the latest revision.
		x.revs[x.latest] = api.Revision{Name: x.latest, App: a.Metadata.Name, Spec: app.RevisionSpecOf(a.Spec), Status: r.Status}
	}
	targets, err := app.ResolveTraffic(a.Spec.Traffic, x.latest, x.latest)
	if err != nil {
		return nil, errdefs.Invalid("app %s: %v", a.Metadata.Name, err)
	}
	for i, t := range targets {
		if _, ok := x.revs[t.Revision]; !ok {
			return nil, errdefs.Invalid("app %s: spec.traffic[%d]: revision %s is not known here: export the App from the daemon (skiff kube export %s) so that its revisions come with it", a.Metadata.Name, i, t.Revision, a.Metadata.Name)
		}
	}
	x.targets = targets
	for _, f := range untranslated(a.Spec) {
		x.warn("spec."+f, "no Kubernetes translation yet: not exported")
	}
	return x, nil
}

// latestRevision names the revision made from a's current spec: the
// newest the daemon created, else status.latestCreatedRevision, else
// NAME-00001.
func latestRevision(a api.App, revs []api.Revision) string {
	best, bestN := "", 0
	for _, r := range revs {
		if _, n, err := app.ParseRevisionName(r.Name); err == nil && n > bestN {
			best, bestN = r.Name, n
		}
	}
	if best != "" {
		if best == a.Status.LatestCreatedRevision || a.Status.LatestCreatedRevision == "" {
			return best
		}
	}
	if a.Status.LatestCreatedRevision != "" {
		return a.Status.LatestCreatedRevision
	}
	return app.RevisionName(a.Metadata.Name, 1)
}

// warn records a field without a (full) Kubernetes counterpart.
func (x *exporter) warn(field, format string, args ...any) {
	x.warns = append(x.warns, Warning{App: x.app.Metadata.Name, Field: field, Message: fmt.Sprintf(format, args...)})
}

// add records an object of a kind.
func (x *exporter) add(kind string, o runtime.Object) {
	x.kinds[kind] = append(x.kinds[kind], o)
}

// kindOrder is the order of kinds in an export.
var kindOrder = []string{"Secret", kindServiceAccont, "PersistentVolumeClaim", "Deployment", "Service", "HorizontalPodAutoscaler", "HTTPRoute", "Ingress", "NetworkPolicy"}

// objects returns the App's objects in the documented order.
func (x *exporter) objects() []runtime.Object {
	var out []runtime.Object
	for _, k := range kindOrder {
		objs := x.kinds[k]
		slices.SortStableFunc(objs, func(a, b runtime.Object) int {
			return strings.Compare(objectName(a), objectName(b))
		})
		out = append(out, objs...)
	}
	return out
}

func objectName(o runtime.Object) string {
	if m, ok := o.(metav1.Object); ok {
		return m.GetName()
	}
	return ""
}

// meta returns the metadata of an object of the App: its name, namespace,
// the App's labels and skiff's, and (for the App-level objects) the
// App's annotations.
func (x *exporter) meta(name, revision string, withAnnotations bool) metav1.ObjectMeta {
	labels := maps.Clone(x.app.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelApp] = x.app.Metadata.Name
	labels[LabelManagedBy] = ManagedBy
	if revision != "" {
		labels[LabelRevision] = revision
	}
	m := metav1.ObjectMeta{Name: name, Namespace: x.opts.Namespace, Labels: labels}
	if withAnnotations && len(x.app.Metadata.Annotations) > 0 {
		m.Annotations = maps.Clone(x.app.Metadata.Annotations)
	}
	return m
}

// selector returns the labels that select the pods of a revision, or of
// every revision of the App when revision is empty.
func (x *exporter) selector(revision string) map[string]string {
	s := map[string]string{LabelApp: x.app.Metadata.Name}
	if revision != "" {
		s[LabelRevision] = revision
	}
	return s
}

// split reports whether traffic goes to more than one revision or has
// tags: then each revision gets its own Service and a route weighs them.
func (x *exporter) split() bool {
	return len(x.targets) > 1 || (len(x.targets) == 1 && x.targets[0].Tag != "")
}

// host returns the App's host, or "" when it has none of its own and no
// domain was given.
func (x *exporter) host() string {
	if x.app.Spec.Ingress.Host != "" || x.opts.Domain != "" {
		return app.Host(x.app, x.opts.Domain)
	}
	return ""
}

// tagHost returns a tag's host, or "" without a domain.
func (x *exporter) tagHost(tag string) string {
	if x.opts.Domain == "" {
		return ""
	}
	return app.TagHost(x.app, tag, x.opts.Domain)
}

// servingRevisions returns the revisions that get a Deployment: those
// with traffic or a tag, and the latest, in name order.
func (x *exporter) servingRevisions() []string {
	set := map[string]bool{x.latest: true}
	for _, t := range x.targets {
		set[t.Revision] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// hasTraffic reports whether a revision receives requests (a share or a
// tag).
func (x *exporter) hasTraffic(rev string) bool {
	for _, t := range x.targets {
		if t.Revision == rev && (t.Percent > 0 || t.Tag != "") {
			return true
		}
	}
	return false
}

// secretObjects adds the Secrets the App's revisions refer to (with
// IncludeSecrets) or warns about each.
func (x *exporter) secretObjects(revs []string) error {
	used := map[string]bool{}
	for _, r := range revs {
		for _, e := range x.revs[r].Spec.Env {
			if name, _, ok := strings.Cut(e.SecretRef, "/"); ok {
				used[name] = true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(used)) {
		if !x.opts.IncludeSecrets {
			x.warn("spec.env", "secret %s is not exported (its values stay on this machine): create it in the cluster, or export with --include-secrets", name)
			continue
		}
		data, ok := x.opts.Secrets[name]
		if !ok {
			return errdefs.NotFound("app %s: spec.env: secret %s: no values to export: create it with skiff secret create %s", x.app.Metadata.Name, name, name)
		}
		s := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: x.meta(name, "", false),
			Type:       corev1.SecretTypeOpaque,
			Data:       maps.Clone(data),
		}
		x.add("Secret", s)
	}
	return nil
}

// volumeClaims adds a PersistentVolumeClaim per named volume.
func (x *exporter) volumeClaims(revs []string) {
	seen := map[string]bool{}
	_, hi := app.ScaleBounds(x.app.Spec.Scale)
	mode := corev1.ReadWriteMany
	if hi == 1 && len(revs) == 1 {
		mode = corev1.ReadWriteOnce
	}
	for _, r := range revs {
		for _, v := range x.revs[r].Spec.Volumes {
			if seen[v.Name] {
				continue
			}
			seen[v.Name] = true
			x.add("PersistentVolumeClaim", &corev1.PersistentVolumeClaim{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: x.meta(v.Name, "", false),
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{mode},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: mustQuantity(defaultVolumeSize)}},
				},
			})
		}
	}
}
