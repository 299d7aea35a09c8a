package kubeapply

import (
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"skiff.dev/skiff/api/errdefs"
)

// ServerError is the API server's refusal of one object.
type ServerError struct {
	// Ref names the refused object (deployment.apps/shop-00001).
	Ref string
	// App is the App the object was exported from ("" when unlabelled).
	App string
	// Causes are the refused fields; empty when the server named none.
	Causes []Cause
	// Message is the server's whole message.
	Message string
	err     error // the category, with the server's message
	orig    error // client-go's error
}

// Cause is one refused field.
type Cause struct {
	// Field is the Kubernetes field path, as the server gave it.
	Field string
	// AppField is the App field it is translated from, "" when unknown.
	AppField string
	// Message is the server's reason.
	Message string
}

func (e *ServerError) Error() string {
	var b strings.Builder
	if e.App != "" {
		fmt.Fprintf(&b, "app %q: ", e.App)
	}
	fmt.Fprintf(&b, "the cluster refused %s", e.Ref)
	if len(e.Causes) == 0 {
		fmt.Fprintf(&b, ": %s", e.Message)
		return b.String()
	}
	for _, c := range e.Causes {
		b.WriteString("\n  ")
		if c.AppField != "" {
			fmt.Fprintf(&b, "%s: ", c.AppField)
		}
		fmt.Fprintf(&b, "%s (%s)", c.Message, c.Field)
	}
	return b.String()
}

// Unwrap returns the client-go error and the error category.
func (e *ServerError) Unwrap() []error { return []error{e.err, e.orig} }

// objectError turns a refusal of obj into a *ServerError in its category;
// other errors (the server unreachable) are classified as such.
func objectError(obj *unstructured.Unstructured, err error) error {
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Code == 0 {
		return unreachable(err)
	}
	s := st.Status()
	se := &ServerError{Ref: ref(obj), App: obj.GetLabels()[LabelApp], Message: s.Message, orig: err}
	kind := obj.GetKind()
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			if c.Field == "" && c.Type != metav1.CauseTypeFieldManagerConflict {
				continue
			}
			se.Causes = append(se.Causes, Cause{Field: c.Field, AppField: AppField(kind, c.Field), Message: causeMessage(c)})
		}
	}
	if len(se.Causes) == 0 {
		// Strict field validation names the fields only in the message.
		for _, m := range strictField.FindAllStringSubmatch(s.Message, -1) {
			se.Causes = append(se.Causes, Cause{Field: m[1], AppField: AppField(kind, m[1]), Message: m[2]})
		}
	}
	switch {
	case apierrors.IsConflict(err):
		se.err = errdefs.Conflict("%s: another field manager owns these fields; give --force-conflicts to take them over", s.Message)
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		se.err = errdefs.Unauthorized("%s", s.Message)
	case apierrors.IsNotFound(err):
		se.err = errdefs.NotFound("%s", s.Message)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		se.err = errdefs.Invalid("%s", s.Message)
	default:
		se.err = errdefs.Unavailable("%s", s.Message)
	}
	return se
}

// strictField finds the fields strict validation refused in its message:
// ".spec.foo: field not declared in schema".
var strictField = regexp.MustCompile(`(\.[A-Za-z][^\s:,]*): (field not declared in schema|duplicate field[^,\n]*)`)

func causeMessage(c metav1.StatusCause) string {
	if c.Type == metav1.CauseTypeFieldManagerConflict {
		return c.Message + ": owned by another field manager (--force-conflicts takes it over)"
	}
	msg := c.Message
	// Invalid causes repeat the field at the start of the message.
	msg = strings.TrimPrefix(msg, c.Field+": ")
	return msg
}

// fieldRule maps Kubernetes field paths matching re to an App field; the
// App field may use re's groups ($1).
type fieldRule struct {
	re  *regexp.Regexp
	app string
}

func rule(re, app string) fieldRule { return fieldRule{regexp.MustCompile(`^` + re), app} }

// containerRules map a container's fields (the path after
// "containers[...].").
var containerRules = []fieldRule{
	rule(`image\b`, "spec.image"),
	rule(`command\b`, "spec.command"),
	rule(`args\b`, "spec.args"),
	rule(`env\[(\d+)\]`, "spec.env[$1]"),
	rule(`env\[name="?([^"\]]+)"?\]`, "spec.env[$1]"),
	rule(`env(From)?\b`, "spec.env"),
	rule(`ports\b`, "spec.port"),
	rule(`resources\.(limits|requests)(\.|\[)(cpu)\b`, "spec.resources.cpu"),
	rule(`resources\.(limits|requests)(\.|\[)(memory)\b`, "spec.resources.memory"),
	rule(`resources\b`, "spec.resources"),
	rule(`readinessProbe\b`, "spec.probes.readiness"),
	rule(`livenessProbe\b`, "spec.probes.liveness"),
	rule(`startupProbe\b`, "spec.probes.startup"),
	rule(`volumeMounts\[(\d+)\]`, "spec.volumes[$1]"),
	rule(`volumeMounts\b`, "spec.volumes"),
	rule(`securityContext\.(runAsUser|readOnlyRootFilesystem|capabilities)\b`, "spec.security.$1"),
	rule(`securityContext\b`, "spec.security"),
}

// objectRules map the rest, by kind ("" for any kind).
var objectRules = map[string][]fieldRule{
	"": {
		rule(`metadata\.name\b`, "metadata.name"),
		rule(`metadata\.labels\b`, "metadata.labels"),
		rule(`metadata\.annotations\b`, "metadata.annotations"),
		rule(`spec\.template\.metadata\.labels\b`, "metadata.labels"),
		rule(`spec\.template\.spec\.volumes\[(\d+)\]`, "spec.volumes[$1]"),
		rule(`spec\.template\.spec\.volumes\b`, "spec.volumes"),
		rule(`spec\.template\.spec\.securityContext\.(runAsUser)\b`, "spec.security.$1"),
		rule(`spec\.template\.spec\.(securityContext|hostUsers)\b`, "spec.security"),
	},
	"Deployment": {
		rule(`spec\.replicas\b`, "spec.scale.min"),
		rule(`spec\.selector\b`, "metadata.labels"),
	},
	"HorizontalPodAutoscaler": {
		rule(`spec\.minReplicas\b`, "spec.scale.min"),
		rule(`spec\.maxReplicas\b`, "spec.scale.max"),
		rule(`spec\.metrics\b`, "spec.scale"),
	},
	"Service": {
		rule(`spec\.ports\b`, "spec.port"),
		rule(`spec\.traffic\[(\d+)\]`, "spec.traffic[$1]"), // Knative
		rule(`spec\.template\.metadata\.annotations\b`, "spec.scale"),
	},
	"Ingress": {
		rule(`spec\.rules\[\d+\]\.host\b`, "spec.ingress.host"),
		rule(`spec\.tls\b`, "spec.ingress.tls"),
		rule(`spec\.rules\[\d+\]\.http\.paths\[\d+\]\.path\b`, "spec.ingress.pathPrefix"),
		rule(`spec\b`, "spec.ingress"),
	},
	"HTTPRoute": {
		rule(`spec\.hostnames\b`, "spec.ingress.host"),
		rule(`spec\.rules\[\d+\]\.backendRefs\[(\d+)\]`, "spec.traffic[$1]"),
		rule(`spec\.rules\[\d+\]\.matches\b`, "spec.ingress.pathPrefix"),
		rule(`spec\.rules\[\d+\]\.timeouts\b`, "spec.ingress.timeout"),
		rule(`spec\b`, "spec.ingress"),
	},
	"NetworkPolicy":         {rule(`spec\b`, "spec.network.allowFrom")},
	"PersistentVolumeClaim": {rule(`(spec|metadata)\b`, "spec.volumes")},
	"Secret":                {rule(`(data|stringData)\b`, "spec.env")},
}

// podContainer matches the pod template's container of a Deployment
// or Knative Service.
var podContainer = regexp.MustCompile(`^spec\.template\.spec\.containers\[[^\]]*\]\.`)

// AppField returns the App field a Kubernetes field path of an exported
// object of kind comes from, or "" when it is not known. Paths may be
// given as the server writes them in Invalid causes
// ("spec.template.spec.containers[0].image") or in strict-validation
// messages (".spec.template.spec.containers[name=\"shop\"].foo").
func AppField(kind, path string) string {
	path = strings.TrimPrefix(path, ".")
	if loc := podContainer.FindStringIndex(path); loc != nil {
		if f := match(containerRules, path[loc[1]:]); f != "" {
			return f
		}
		return ""
	}
	if f := match(objectRules[kind], path); f != "" {
		return f
	}
	return match(objectRules[""], path)
}

func match(rules []fieldRule, path string) string {
	for _, r := range rules {
		if m := r.re.FindStringSubmatchIndex(path); m != nil {
			return string(r.re.ExpandString(nil, r.app, path, m))
		}
	}
	return ""
}
