package kubeapply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/kube"
)

// FieldManager is the field manager skiff applies with; pruning deletes
// only objects this manager applied.
const FieldManager = "skiff"

// The labels every exported object carries (set by the export in
// internal/cli/kube): pruning selects on both.
const (
	LabelManagedBy = kube.LabelManagedBy
	ManagedByValue = kube.ManagedBy
	LabelApp       = kube.LabelApp
)

// ConnectOptions name a cluster the way kubectl does.
type ConnectOptions struct {
	// Kubeconfig is the kubeconfig file; empty means $KUBECONFIG or
	// ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context; empty means its current context.
	Context string
	// Namespace overrides the context's namespace ("default" when neither
	// names one).
	Namespace string
}

// Cluster is a connection to one Kubernetes API server.
type Cluster struct {
	// Namespace is where objects without a namespace go.
	Namespace string

	dyn    dynamic.Interface
	disc   discovery.CachedDiscoveryInterface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// warn receives the server's warnings (deprecated fields and the like).
	warn func(string)
}

// Connect reads the kubeconfig and returns a Cluster for it. warn, if not
// nil, receives each warning the server sends. Nothing is sent to the
// server yet.
func Connect(o ConnectOptions, warn func(string)) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, errdefs.Invalid("cannot use the kubeconfig (give one with --kubeconfig or KUBECONFIG, and a context with --context): %w", err)
	}
	ns := o.Namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	return NewCluster(rc, ns, warn)
}

// quietKlog keeps client-go's own logging (klog) off skiff's stderr:
// what matters reaches the caller as an error or a warning.
var quietKlog sync.Once

// NewCluster returns a Cluster for a client-go configuration.
func NewCluster(rc *rest.Config, namespace string, warn func(string)) (*Cluster, error) {
	quietKlog.Do(func() { klog.SetLogger(logr.Discard()) })
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "skiff"
	if rc.QPS == 0 {
		// kubectl's rates: client-go's default (5/s) makes a wait on many
		// Deployments queue behind its own limiter.
		rc.QPS, rc.Burst = 50, 300
	}
	if warn == nil {
		warn = func(string) {}
	}
	rc.WarningHandlerWithContext = warningFunc(warn)
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, errdefs.Invalid("cannot make a client for %s: %w", rc.Host, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, errdefs.Invalid("cannot make a client for %s: %w", rc.Host, err)
	}
	disc := memory.NewMemCacheClient(dc)
	return &Cluster{
		Namespace: namespace,
		dyn:       dyn,
		disc:      disc,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(disc),
		warn:      warn,
	}, nil
}

type warningFunc func(string)

func (f warningFunc) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, msg string) {
	if code == 299 && msg != "" {
		f(msg)
	}
}

// Check asks the server for its version: an error says the cluster
// cannot be reached or refuses the credentials.
func (c *Cluster) Check() error {
	if _, err := c.disc.ServerVersion(); err != nil {
		return unreachable(err)
	}
	return nil
}

// Serves reports whether the API server serves kind (group, version and
// kind), asking discovery. A group the server does not know is no error.
func (c *Cluster) Serves(gvk schema.GroupVersionKind) (bool, error) {
	list, err := c.disc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
	if err != nil {
		if apierrors.IsNotFound(err) || errors.Is(err, memory.ErrCacheNotFound) {
			return false, nil // a group the server does not know
		}
		return false, unreachable(err)
	}
	for _, r := range list.APIResources {
		if r.Kind == gvk.Kind {
			return true, nil
		}
	}
	return false, nil
}

// Refresh forgets what discovery learnt, so kinds installed since (CRDs)
// are seen.
func (c *Cluster) Refresh() {
	c.disc.Invalidate()
	c.mapper.Reset()
}

// resource returns the client for obj's kind, in obj's namespace (the
// Cluster's when obj names none) when the kind is namespaced.
func (c *Cluster) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, nil, errdefs.Invalid("object %q has no apiVersion or kind", obj.GetName())
	}
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil, errdefs.NotFound("the cluster does not serve %s %s: install the API that defines it (its CRDs) or export without it", gvk.GroupVersion(), gvk.Kind)
		}
		return nil, nil, unreachable(err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource), m, nil
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(c.Namespace)
	}
	return c.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), m, nil
}

// unreachable classifies an error talking to the server that is not about
// one object.
func unreachable(err error) error {
	var se apierrors.APIStatus
	switch {
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return errdefs.Unauthorized("the cluster refused skiff's credentials (check the kubeconfig's user): %w", err)
	case errors.As(err, &se):
		return fmt.Errorf("kubernetes: %w", err)
	}
	return errdefs.Unavailable("cannot reach the cluster (is the kubeconfig's server up?): %w", err)
}

// ref names an object as kubectl does: kind.group/name.
func ref(obj *unstructured.Unstructured) string {
	gk := obj.GroupVersionKind().GroupKind()
	k := strings.ToLower(gk.Kind)
	if gk.Group != "" {
		k += "." + gk.Group
	}
	return k + "/" + obj.GetName()
}
