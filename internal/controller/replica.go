package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"skiff.dev/skiff/api"
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
	runStart    time.Time // StartedAt of the run being probed
	started     bool      // startup probe passed in this run
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

func (r *replica) isStarting() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starting
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

// Probe timing. Until a replica is first ready in a run, readiness is
// probed fast so a cold start is seen within a millisecond or two of the
// port opening; then at the probe's period.
const (
	fastProbe      = time.Millisecond
	fastProbeFor   = 3 * time.Second
	mediumProbe    = 20 * time.Millisecond
	mediumProbeFor = 30 * time.Second
)

func withDefaults(p *api.Probe, period time.Duration, failures int) api.Probe {
	out := *p
	if out.Period.Duration == 0 {
		out.Period.Duration = period
	}
	if out.Timeout.Duration == 0 {
		out.Timeout.Duration = time.Second
	}
	if out.FailureThreshold == 0 {
		out.FailureThreshold = failures
	}
	if out.SuccessThreshold == 0 {
		out.SuccessThreshold = 1
	}
	return out
}

// probeConfig returns the replica's probes with defaults filled in; the
// readiness probe defaults to a TCP connection to the port.
func probeConfig(ps api.Probes, port int) (startup, readiness, liveness *api.Probe) {
	if ps.Startup != nil {
		p := withDefaults(ps.Startup, time.Second, 30)
		startup = &p
	}
	rp := &api.Probe{TCP: &api.TCPSocketAction{Port: port}}
	if ps.Readiness != nil {
		rp = ps.Readiness
	}
	p := withDefaults(rp, time.Second, 3)
	readiness = &p
	if ps.Liveness != nil {
		p := withDefaults(ps.Liveness, 10*time.Second, 3)
		liveness = &p
	}
	return
}

// probeOnce runs one probe against the replica.
func (c *Controller) probeOnce(ctx context.Context, r *replica, ip string, p *api.Probe, hc *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout.Duration)
	defer cancel()
	switch {
	case p.HTTP != nil:
		port := p.HTTP.Port
		if port == 0 {
			port = r.port
		}
		path := p.HTTP.Path
		if path == "" {
			path = "/"
		}
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+net.JoinHostPort(ip, strconv.Itoa(port))+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "skiff-probe")
		for _, h := range p.HTTP.Headers {
			req.Header.Set(h.Name, h.Value)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("HTTP GET %s: status %d", path, resp.StatusCode)
		}
		return nil
	case p.TCP != nil:
		port := p.TCP.Port
		if port == 0 {
			port = r.port
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.Exec != nil:
		code, err := c.cfg.Containers.Exec(ctx, r.id, api.ExecRequest{Cmd: p.Exec.Command}, runtime.ExecIO{})
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("exec %v: exit code %d", p.Exec.Command, code)
		}
		return nil
	}
	return fmt.Errorf("probe has no action")
}

// runProber probes r until ctx is done. It follows the container through
// restarts: each new run starts with the startup probe again.
func (c *Controller) runProber(ctx context.Context, r *replica) {
	defer c.wg.Done()
	startup, readiness, liveness := probeConfig(r.probes, r.port)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var (
		readyOK, readyFail, liveFail, startFail int
		lastLive                                time.Time
		lastReady                               time.Time
	)
	for {
		ctr, err := c.cfg.Containers.Get(ctx, r.id)
		if err != nil {
			c.setReady(r, false, "container is gone")
			return
		}
		r.mu.Lock()
		r.status = ctr.State.Status
		if ctr.State.Status != api.StatusCreated {
			r.starting = false
		}
		r.restarts = ctr.State.RestartCount
		r.oomKilled = ctr.State.OOMKilled
		if ctr.NetworkSettings != nil {
			r.ip = ctr.NetworkSettings.IP
		}
		ip := r.ip
		newRun := ctr.State.Status == api.StatusRunning && !ctr.State.StartedAt.Equal(r.runStart)
		if newRun {
			r.runStart = ctr.State.StartedAt
			r.started = startup == nil
			readyOK, readyFail, liveFail, startFail = 0, 0, 0, 0
			lastLive, lastReady = time.Time{}, time.Time{}
		}
		runStart, started := r.runStart, r.started
		r.mu.Unlock()

		if ctr.State.Status != api.StatusRunning || ip == "" {
			c.setReady(r, false, fmt.Sprintf("container is %s", ctr.State.Status))
			if !c.sleep(ctx, r, 200*time.Millisecond) {
				return
			}
			continue
		}
		since := time.Since(runStart)
		now := time.Now()
		var wait time.Duration
		switch {
		case !started:
			if since < startup.InitialDelay.Duration {
				wait = startup.InitialDelay.Duration - since
				break
			}
			if err := c.probeOnce(ctx, r, ip, startup, hc); err != nil {
				startFail++
				c.noteFailure(r, "startup probe: "+err.Error())
				if startFail >= startup.FailureThreshold {
					c.restartReplica(r, "startup probe failed "+strconv.Itoa(startFail)+" times: "+err.Error())
					startFail = 0
				}
				wait = pace(since, startup.Period.Duration)
				break
			}
			r.mu.Lock()
			r.started = true
			r.mu.Unlock()
			continue
		default:
			if liveness != nil && now.Sub(lastLive) >= liveness.Period.Duration && since >= liveness.InitialDelay.Duration {
				lastLive = now
				if err := c.probeOnce(ctx, r, ip, liveness, hc); err != nil {
					liveFail++
					if liveFail >= liveness.FailureThreshold {
						c.restartReplica(r, "liveness probe failed "+strconv.Itoa(liveFail)+" times: "+err.Error())
						liveFail = 0
						continue
					}
				} else {
					liveFail = 0
				}
			}
			r.mu.Lock()
			isReady := r.ready
			r.mu.Unlock()
			period := readiness.Period.Duration
			if !isReady && readyOK == 0 {
				period = pace(since, period)
			}
			if since < readiness.InitialDelay.Duration {
				wait = readiness.InitialDelay.Duration - since
				break
			}
			if now.Sub(lastReady) >= period {
				lastReady = now
				if err := c.probeOnce(ctx, r, ip, readiness, hc); err != nil {
					readyOK = 0
					readyFail++
					c.noteFailure(r, "readiness probe: "+err.Error())
					if isReady && readyFail >= readiness.FailureThreshold {
						c.setReady(r, false, "readiness probe failed: "+err.Error())
					}
				} else {
					readyFail = 0
					readyOK++
					if !isReady && readyOK >= readiness.SuccessThreshold {
						c.setReady(r, true, "")
					}
				}
			}
			wait = period - time.Since(lastReady)
			if liveness != nil {
				wait = min(wait, liveness.Period.Duration-time.Since(lastLive))
			}
		}
		if wait < 0 {
			wait = 0
		}
		if !c.sleep(ctx, r, wait) {
			return
		}
	}
}

// pace is the readiness probing interval before a replica was first
// ready in its run: fast at first, slower later, never slower than period.
func pace(since, period time.Duration) time.Duration {
	switch {
	case since < fastProbeFor:
		return min(fastProbe, period)
	case since < mediumProbeFor:
		return min(mediumProbe, period)
	}
	return period
}

// sleep waits d, or until the replica is poked or ctx done (false).
func (c *Controller) sleep(ctx context.Context, r *replica, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.wakeCh:
	case <-t.C:
	}
	return true
}

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
// liveness probe.
func (c *Controller) restartReplica(r *replica, why string) {
	c.setReady(r, false, why)
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
