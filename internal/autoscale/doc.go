// Package autoscale decides how many replicas a revision needs from what
// the ingress measured of its load. It is pure: observations and the
// current time come in as arguments, a decision and its reason go out, so
// every behaviour is a table test.
//
// The model is Knative's: the load (in-flight requests, or requests per
// second, or CPU or memory use) is averaged over a stable window (60s by
// default) and over a short panic window; the desired count is the load
// divided by the per-replica target, rounded up. When the panic window
// asks for at least twice the replicas that are ready, the decider panics:
// it scales to the panic window's count at once and does not scale down
// until a whole stable window has passed without panic. Out of panic, a
// scale-down never goes below what the panic window's load needs, so the
// end of a panic under a load that has since become steady does not drop
// replicas only to panic back up. Skiff's panic window is one second
// (Knative's is six), so a step in load is met within about a second;
// averaging over many short samples keeps it from flapping. With min 0 a
// revision with no request in flight and none arriving for the idle
// timeout is scaled to zero, whatever the windows still hold; the first request after that is held by the ingress's
// activator while a replica starts.
package autoscale
