package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"skiff.dev/skiff/api"
)

// Probe timing. Until a container is first ready in a run, readiness is
// probed every FastPeriod for FastFor, then every MediumPeriod until
// MediumFor, then at the probe's period.
const (
	FastPeriod   = time.Millisecond
	FastFor      = 3 * time.Second
	MediumPeriod = 20 * time.Millisecond
	MediumFor    = 30 * time.Second
)

// Pace is the readiness probing interval since a run started, before the
// container was first ready in it: fast at first, slower later, never
// slower than period.
func Pace(since, period time.Duration) time.Duration {
	switch {
	case since < FastFor:
		return min(FastPeriod, period)
	case since < MediumFor:
		return min(MediumPeriod, period)
	}
	return period
}

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

// Config returns a container's probes with defaults filled in (period
// 1s for startup and readiness, 10s for liveness; timeout 1s; failure
// threshold 30 for startup, 3 otherwise; success threshold 1). Readiness
// defaults to a TCP connection to port; startup and liveness are nil
// when not set.
func Config(ps api.Probes, port int) (startup, readiness, liveness *api.Probe) {
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

// Exec runs a command in the probed container and returns its exit code.
type Exec func(ctx context.Context, cmd []string) (int, error)

// Once runs probe p once against the container at ip, whose own port is
// port (used when the probe names none), within p.Timeout. It returns
// nil when the probe passes, else what failed.
func Once(ctx context.Context, p *api.Probe, ip string, port int, exec Exec, hc *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout.Duration)
	defer cancel()
	switch {
	case p.HTTP != nil:
		return httpGet(ctx, p.HTTP, ip, port, hc)
	case p.TCP != nil:
		if p.TCP.Port != 0 {
			port = p.TCP.Port
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.Exec != nil:
		code, err := exec(ctx, p.Exec.Command)
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

func httpGet(ctx context.Context, h *api.HTTPGetAction, ip string, port int, hc *http.Client) error {
	if h.Port != 0 {
		port = h.Port
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+net.JoinHostPort(ip, strconv.Itoa(port))+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "skiff-probe")
	for _, hd := range h.Headers {
		req.Header.Set(hd.Name, hd.Value)
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
}

// NewHTTPClient returns the client probes use: no keep-alives (each
// probe opens a connection, as the app's clients would), no redirects.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
