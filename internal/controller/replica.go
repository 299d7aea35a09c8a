package controller

import (
	"context"
	"sync"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/probe"
	"skiff.dev/skiff/internal/runtime"
)

// replica is one container of a revision as the controller tracks it.
// The fields after mu are written by the replica's prober; they have a
// lock of their own so probes never wait for a reconcile.
type replica struct {
	id, name, app, rev string
	port               int
	probes             api.Probes
	created            time.Time
	prewarm            bool // made for the prewarm pool

	wakeCh chan struct{}
	cancel context.CancelFunc

	mu          sync.Mutex
	ip          string
	ready       bool
	everReady   bool
	terminating bool
	starting    bool   // a prewarmed container is being started
	status      string // container status
	restarts    int    // by the container's restart policy
	probeKills  int    // restarts after failed startup or liveness probes
	oomKilled   bool
	lastErr     string
	failingFor  time.Time // when the current unready stretch began
}

func (r *replica) poke() {
	select {
	case r.wakeCh <- struct{}{}:
	default:
	}
}

func (r *replica) stopProber() {
	if r.cancel != nil {
		r.cancel()
	}
}

type replicaView struct {
	ready, everReady, terminating bool
	ip, status, lastErr           string
	restarts                      int
	oomKilled                     bool
	failingFor                    time.Time
}

func (r *replica) view() replicaView {
	r.mu.Lock()
	defer r.mu.Unlock()
	return replicaView{ready: r.ready, everReady: r.everReady, terminating: r.terminating, ip: r.ip,
		status: r.status, lastErr: r.lastErr, restarts: r.restarts + r.probeKills, oomKilled: r.oomKilled, failingFor: r.failingFor}
}

// replicaReporter passes the results of a replica's prober to the
// controller.
type replicaReporter struct {
	c *Controller
	r *replica
}

// Seen records the container's state as the prober read it.
func (rr replicaReporter) Seen(ctr api.Container) {
	r := rr.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = ctr.State.Status
	if ctr.State.Status != api.StatusCreated {
		r.starting = false
	}
	r.restarts = ctr.State.RestartCount
	r.oomKilled = ctr.State.OOMKilled
	if ctr.NetworkSettings != nil {
		r.ip = ctr.NetworkSettings.IP
	}
}

func (rr replicaReporter) Ready(ready bool, why string) { rr.c.setReady(rr.r, ready, why) }
func (rr replicaReporter) Failing(msg string)           { rr.c.noteFailure(rr.r, msg) }
func (rr replicaReporter) Restart(why string)           { rr.c.restartReplica(rr.r, why) }

var _ probe.Reporter = replicaReporter{}

// probeRuntime is the containers as a prober reads them.
type probeRuntime struct{ Containers }

// Exec runs cmd in container id and returns its exit code.
func (p probeRuntime) Exec(ctx context.Context, id string, cmd []string) (int, error) {
	return p.Containers.Exec(ctx, id, api.ExecRequest{Cmd: cmd}, runtime.ExecIO{})
}

var _ probe.Runtime = probeRuntime{}

func (c *Controller) noteFailure(r *replica, msg string) {
	r.mu.Lock()
	r.lastErr = msg
	if r.failingFor.IsZero() && !r.ready {
		r.failingFor = time.Now()
	}
	r.mu.Unlock()
}

// setReady changes r's readiness and, when it changed, the routes.
func (c *Controller) setReady(r *replica, ready bool, why string) {
	r.mu.Lock()
	changed := r.ready != ready
	r.ready = ready
	if ready {
		r.everReady = true
		r.failingFor = time.Time{}
		r.lastErr = ""
	} else if why != "" {
		r.lastErr = why
		if r.failingFor.IsZero() {
			r.failingFor = time.Now()
		}
	}
	r.mu.Unlock()
	if changed {
		c.updateRoutes()
		c.enqueue(r.app)
	}
}

// restartReplica restarts a replica's container after a failed startup or
// liveness probe (its prober has made it unready).
func (c *Controller) restartReplica(r *replica, why string) {
	c.appEvent(r.app, api.EventWarning, "ProbeFailed", "replica %s: %s; restarting it", r.name, why)
	r.mu.Lock()
	r.probeKills++
	r.mu.Unlock()
	grace := 5 * time.Second
	if err := c.cfg.Containers.Restart(context.WithoutCancel(c.bg), r.id, &grace); err != nil {
		c.log.Warn("restart replica", "replica", r.name, "err", err)
	}
}

// state is r as decide observes it.
func (r *replica) state() replicaState {
	r.mu.Lock()
	starting := r.starting
	r.mu.Unlock()
	return replicaState{ID: r.id, Name: r.name, Revision: r.rev, Created: r.created, Prewarm: r.prewarm, Starting: starting, replicaView: r.view()}
}
