// Package controller is skiff's App controller: it converges the machine
// towards the Apps users applied. For each App it keeps revisions (one per
// change of the runnable part of the spec), replicas (containers of a
// revision, probed for health), the ingress route table (ready replicas,
// weighted by spec.traffic) and the App's status.
//
// The controller is level-triggered: a reconcile looks at the whole
// desired and actual state of one App and acts on the difference; it runs
// when the App changes, when one of its containers changes, when a probe
// changes a replica's readiness, and on a periodic resync. A reconcile is
// observe, decide, act, as in Knative: it reads the App and its revisions
// from the store and its replicas as the probers see them; decide (a pure
// function of that observation and the time, with no store, goroutines
// or clock) returns the actions (create, start or drain replicas, store
// revisions as ready, prune old ones), the events and the new status; the
// worker carries them out. The status and the route table are pure
// builders over the same observation. A reconcile never waits: slow work
// (creating a replica, draining one before stopping it) runs in the
// background and enqueues the App again when done. Each replica has a
// prober (package probe) that reports its state and readiness back.
//
// Events are queued and recorded by the worker: no caller, and in
// particular not Activate on the ingress's request path, waits for the
// store, and no store write happens under the controller's lock.
//
// Zero-downtime rollouts follow from the rules: a new revision gets
// replicas at once; traffic that follows the latest revision moves to it
// only when it is ready; a revision without traffic is scaled to zero, and
// each of its replicas is first taken out of the route table, then waits
// for its in-flight requests, then gets SIGTERM.
//
// Writes of an App are conditional on the resourceVersion they are based
// on (store.UpdateApp). The API verbs (Apply, SetTraffic, Rollback,
// Scale) take turns per App and read, change and write again when a
// status write came between; an App applied with a resourceVersion gets
// the conflict instead. Reconcile writes only status
// (store.UpdateAppStatus), based on its own read: a status computed from
// an older spec is refused, never stored over a newer App.
package controller
