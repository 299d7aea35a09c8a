// Package kube translates Apps to Kubernetes objects and back. It is
// pure: no daemon, no cluster, no clock; what the daemon knows (revisions,
// secret values) is passed in.
//
// The contract, stable for callers such as `skiff kube apply`:
//
//	func Export(apps []api.App, opts Options) ([]runtime.Object, []Warning, error)
//
// Export returns typed objects from k8s.io/api (and Gateway API types for
// HTTPRoute; a Knative Service is an *unstructured.Unstructured), each
// with its apiVersion and kind set, in a stable order: for every App in
// the order given, its Secrets, ServiceAccounts, PersistentVolumeClaims, Deployments,
// Services, HorizontalPodAutoscalers, routes (HTTPRoute or Ingress) and
// NetworkPolicies, each kind sorted by name. A Secret or
// PersistentVolumeClaim used by several Apps (skiff's secrets and named
// volumes are shared) is made once, with the first App. Every object carries the
// labels LabelApp (the App's name) and LabelManagedBy ("skiff"); objects
// of one revision also carry LabelRevision. Every App gets a
// NetworkPolicy (skiff isolates every App) admitting its own pods, those
// of the Apps spec.network.allowFrom selects and the pods of the
// namespaces labelled LabelIngressNamespace=true. Every App field with no
// Kubernetes counterpart yields a Warning naming the field; such fields
// are kept as skiff.dev/ annotations so that an import gets them back.
// Errors are errdefs.ErrInvalid and name the App and field.
//
//	func Import(objs []Object) ([]api.App, []Warning, error)
//
// Import is the reverse, for Deployments with their Services,
// HorizontalPodAutoscalers, Ingresses and HTTPRoutes, and for Knative
// Services, with the NetworkPolicies that select their pods. ImportACA reads an Azure Container Apps document. What cannot
// be expressed in an App is listed as a Warning, never dropped silently.
//
// docs/kubernetes.md maps every App field to its Kubernetes field.
package kube
