package probe

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"skiff.dev/skiff/api"
)

// Runtime is what a Prober reads of its container.
type Runtime interface {
	// Get returns the container's record; an error once it is gone.
	Get(ctx context.Context, id string) (api.Container, error)
	// Exec runs cmd in the container and returns its exit code.
	Exec(ctx context.Context, id string, cmd []string) (int, error)
}

// Reporter receives what a Prober finds. Its methods are called from the
// Prober's goroutine, one at a time, and should not block for long.
type Reporter interface {
	// Seen reports each read of the container's record.
	Seen(ctr api.Container)
	// Ready reports the container ready or not (why says why not). It is
	// called again with the same readiness when the reason changes.
	Ready(ready bool, why string)
	// Failing reports a failed probe that does not change readiness (yet).
	Failing(msg string)
	// Restart asks for the container to be restarted: its startup or
	// liveness probe failed FailureThreshold times in a row. The Prober
	// has reported it unready first.
	Restart(why string)
}

// Prober probes one container until its context ends.
type Prober struct {
	// ID is the container's; Port is the port probes use when they name
	// none.
	ID     string
	Port   int
	Probes api.Probes
	// Runtime reads and execs in the container; Reporter gets the
	// results.
	Runtime  Runtime
	Reporter Reporter
	// Wake, when it receives, makes the Prober read the container at
	// once (its state changed) instead of at its next probe.
	Wake <-chan struct{}
	// HTTPClient sends HTTP probes (default NewHTTPClient()).
	HTTPClient *http.Client

	ready bool
	ip    string
}

// run is the probing state of one run of the container (from one start).
type run struct {
	start                                   time.Time
	started                                 bool // the startup probe passed
	readyOK, readyFail, liveFail, startFail int
	lastLive, lastReady                     time.Time
}

// notRunningPoll is how often a container that is not running is read
// again (a Wake comes sooner when its state changes).
const notRunningPoll = 200 * time.Millisecond

// Run probes the container until ctx ends or the container is gone. It
// follows the container through restarts: each new run starts with the
// startup probe again.
func (p *Prober) Run(ctx context.Context) {
	if p.HTTPClient == nil {
		p.HTTPClient = NewHTTPClient()
	}
	startup, readiness, liveness := Config(p.Probes, p.Port)
	var r run
	for {
		ctr, err := p.Runtime.Get(ctx, p.ID)
		if err != nil {
			p.setReady(false, "container is gone")
			return
		}
		p.Reporter.Seen(ctr)
		if ctr.NetworkSettings != nil {
			p.ip = ctr.NetworkSettings.IP
		}
		running := ctr.State.Status == api.StatusRunning
		if running && !ctr.State.StartedAt.Equal(r.start) {
			r = run{start: ctr.State.StartedAt, started: startup == nil}
		}
		var wait time.Duration
		switch {
		case !running || p.ip == "":
			p.setReady(false, fmt.Sprintf("container is %s", ctr.State.Status))
			wait = notRunningPoll
		case !r.started:
			wait = p.startup(ctx, &r, startup)
		default:
			wait = p.serving(ctx, &r, readiness, liveness)
		}
		if !p.sleep(ctx, wait) {
			return
		}
	}
}

func (p *Prober) once(ctx context.Context, pr *api.Probe) error {
	exec := func(ctx context.Context, cmd []string) (int, error) { return p.Runtime.Exec(ctx, p.ID, cmd) }
	return Once(ctx, pr, p.ip, p.Port, exec, p.HTTPClient)
}

// startup runs the startup probe when it is due and returns how long to
// wait before the next step.
func (p *Prober) startup(ctx context.Context, r *run, pr *api.Probe) time.Duration {
	since := time.Since(r.start)
	if since < pr.InitialDelay.Duration {
		return pr.InitialDelay.Duration - since
	}
	if err := p.once(ctx, pr); err != nil {
		r.startFail++
		p.Reporter.Failing("startup probe: " + err.Error())
		if r.startFail >= pr.FailureThreshold {
			p.restart(fmt.Sprintf("startup probe failed %d times: %v", r.startFail, err))
			r.startFail = 0
		}
		return Pace(since, pr.Period.Duration)
	}
	r.started = true
	return 0
}

// serving runs the liveness and readiness probes that are due and
// returns how long to wait before the next one.
func (p *Prober) serving(ctx context.Context, r *run, readiness, liveness *api.Probe) time.Duration {
	since := time.Since(r.start)
	now := time.Now()
	if liveness != nil && now.Sub(r.lastLive) >= liveness.Period.Duration && since >= liveness.InitialDelay.Duration {
		r.lastLive = now
		if err := p.once(ctx, liveness); err != nil {
			if r.liveFail++; r.liveFail >= liveness.FailureThreshold {
				p.restart(fmt.Sprintf("liveness probe failed %d times: %v", r.liveFail, err))
				r.liveFail = 0
				return 0
			}
		} else {
			r.liveFail = 0
		}
	}
	period := readiness.Period.Duration
	if !p.ready && r.readyOK == 0 {
		period = Pace(since, period)
	}
	wait := readiness.InitialDelay.Duration - since
	if wait <= 0 {
		if now.Sub(r.lastReady) >= period {
			r.lastReady = now
			p.readiness(ctx, r, readiness)
		}
		wait = period - time.Since(r.lastReady)
	}
	if liveness != nil {
		// The next liveness probe: a period after the last, and not
		// before its initial delay.
		next := r.lastLive.Add(liveness.Period.Duration)
		if first := r.start.Add(liveness.InitialDelay.Duration); first.After(next) {
			next = first
		}
		wait = min(wait, time.Until(next))
	}
	return wait
}

// readiness runs the readiness probe once and applies its thresholds.
func (p *Prober) readiness(ctx context.Context, r *run, pr *api.Probe) {
	if err := p.once(ctx, pr); err != nil {
		r.readyOK = 0
		r.readyFail++
		p.Reporter.Failing("readiness probe: " + err.Error())
		if p.ready && r.readyFail >= pr.FailureThreshold {
			p.setReady(false, "readiness probe failed: "+err.Error())
		}
		return
	}
	r.readyFail = 0
	r.readyOK++
	if !p.ready && r.readyOK >= pr.SuccessThreshold {
		p.setReady(true, "")
	}
}

func (p *Prober) setReady(ready bool, why string) {
	p.ready = ready
	p.Reporter.Ready(ready, why)
}

func (p *Prober) restart(why string) {
	p.setReady(false, why)
	p.Reporter.Restart(why)
}

// sleep waits d, or until woken or ctx ends (false).
func (p *Prober) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-p.Wake:
	case <-t.C:
	}
	return true
}
