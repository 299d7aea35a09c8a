// Package kubeapply puts Kubernetes objects exported from skiff Apps on a
// real cluster through client-go: server-side apply with the field manager
// "skiff" and strict field validation, a diff against a server-side dry
// run, pruning of what an App no longer declares, and waiting for rollouts.
//
// Terms:
//   - A Cluster is a connection to one API server (from a kubeconfig file
//     and context) with a default namespace.
//   - An object is declared when it is among the objects given to Apply.
//     Every object skiff exports carries LabelManagedBy=skiff and LabelApp
//     with the name of the App it comes from.
//   - Pruning deletes, for each App being applied, the objects of the kinds
//     in PruneKinds that carry the App's labels, were last applied by the
//     field manager "skiff", and are not declared. Nothing else is touched:
//     objects of other Apps, of other managers or without the labels stay.
//
// Errors: a refused object is returned as a *ServerError that names the
// object, the server's message, and, where the translation is known, the
// App field the refused Kubernetes field comes from. Errors are classified
// with api/errdefs: Invalid for objects the server refuses, Conflict for
// field-manager conflicts (--force-conflicts takes the fields over),
// NotFound for kinds the cluster does not serve, Unavailable for a cluster
// that cannot be reached.
package kubeapply
