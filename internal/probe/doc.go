// Package probe runs the health probes of one container, the way a
// kubelet does: a startup probe first (the others wait until it passes;
// failing it FailureThreshold times asks for a restart), then readiness
// (SuccessThreshold passes make the container ready, FailureThreshold
// failures unready) and liveness (FailureThreshold failures ask for a
// restart). Each probe is an HTTP GET (2xx and 3xx pass; redirects are
// not followed), a TCP connection, or a command run in the container
// (exit code 0 passes). Probes wait InitialDelay after the container
// started, and start over with the startup probe on each new run.
//
// A Prober reads the container through a Runtime and reports to a
// Reporter; it holds no lock of its caller's and never writes to a
// store. Until a container is first ready in a run, readiness is probed
// fast (Pace), so that a cold start is seen within a millisecond or two
// of its port opening.
package probe
