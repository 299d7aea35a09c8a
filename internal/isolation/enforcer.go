package isolation

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/network/firewall"
)

// Firewall applies the App rules and reads their refusal counters
// (*firewall.Firewall).
type Firewall interface {
	SetApps(ctx context.Context, apps []firewall.AppPolicy) error
	RefusedCounts(ctx context.Context) (map[string]uint64, error)
}

// Apps lists the stored Apps.
type Apps interface {
	ListApps(ctx context.Context) ([]api.App, error)
}

// Events records events.
type Events interface {
	AddEvent(ctx context.Context, e api.Event) error
}

// ReasonConnectionRefused is the reason of the event recorded on an App
// whose replicas were sent connections the firewall refused.
const ReasonConnectionRefused = "ConnectionRefused"

// DefaultInterval is how often the Enforcer applies changed Apps and
// reads the refusal counters, unless Config.Interval says otherwise.
const DefaultInterval = time.Second

// Config holds an Enforcer's dependencies.
type Config struct {
	Firewall Firewall
	Apps     Apps
	Events   Events
	// Interval is the resync period (DefaultInterval when 0).
	Interval time.Duration
	// BridgeSysctl is the bridge netfilter switch; tests point it
	// elsewhere. Default /proc/sys/net/bridge/bridge-nf-call-iptables.
	BridgeSysctl string
	Logger       *slog.Logger
}

// Enforcer keeps the firewall's App rules in step with the Apps and their
// replicas. It is safe for concurrent use.
type Enforcer struct {
	cfg Config
	log *slog.Logger

	// syncMu makes each Sync, from listing the Apps to applying the
	// rules, one step: an older list is never applied after a newer one.
	syncMu sync.Mutex
	// mu guards the fields below.
	mu       sync.Mutex
	replicas map[string]Replica // by container ID
	apps     []api.App          // as last listed
	applied  []firewall.AppPolicy
	synced   bool
	counts   map[string]uint64 // refused packets by App, as last read
	counted  bool

	cancel context.CancelFunc
	done   chan struct{}
}

var refusedDesc = prometheus.NewDesc("skiff_network_refused_total",
	"Connections to an App's replicas refused by the firewall, from sources its spec.network.allowFrom does not allow (packets).",
	[]string{"app"}, nil)

// New returns an Enforcer; Start starts it.
func New(cfg Config) *Enforcer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BridgeSysctl == "" {
		cfg.BridgeSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Enforcer{cfg: cfg, log: cfg.Logger, replicas: map[string]Replica{}, counts: map[string]uint64{}}
}

// Start turns on the bridge netfilter, takes replicas (by container ID:
// those whose network is up, after a restart), applies the rules and
// starts the resync loop, which runs until Close.
func (e *Enforcer) Start(ctx context.Context, replicas map[string]Replica) error {
	if err := EnableBridgeFilter(e.cfg.BridgeSysctl); err != nil {
		return err
	}
	e.mu.Lock()
	for id, r := range replicas {
		e.replicas[id] = r
	}
	e.mu.Unlock()
	if err := e.Sync(ctx); err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel, e.done = cancel, make(chan struct{})
	go e.loop(bg)
	return nil
}

// Close stops the resync loop. The rules stay in place: the replicas stay
// isolated while no daemon runs.
func (e *Enforcer) Close() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

// Add records that the network of container id, a replica of app, is up
// at ip, and applies the rules before it returns.
func (e *Enforcer) Add(ctx context.Context, id string, r Replica) error {
	e.mu.Lock()
	e.replicas[id] = r
	e.mu.Unlock()
	return e.Sync(ctx)
}

// Remove forgets container id (a no-op for a container that is not a
// replica) and applies the rules before it returns.
func (e *Enforcer) Remove(ctx context.Context, id string) error {
	e.mu.Lock()
	_, ok := e.replicas[id]
	delete(e.replicas, id)
	e.mu.Unlock()
	if !ok {
		return nil
	}
	return e.Sync(ctx)
}

// Sync lists the Apps and applies the rules if they changed.
func (e *Enforcer) Sync(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	apps, err := e.cfg.Apps.ListApps(ctx)
	if err != nil {
		return fmt.Errorf("list Apps for their network isolation: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	reps := make([]Replica, 0, len(e.replicas))
	for _, r := range e.replicas {
		reps = append(reps, r)
	}
	e.apps = apps
	want := Policies(apps, reps)
	if e.synced && reflect.DeepEqual(want, e.applied) {
		return nil
	}
	if err := e.cfg.Firewall.SetApps(ctx, want); err != nil {
		e.synced = false
		return fmt.Errorf("apply the isolation between Apps: %w", err)
	}
	e.applied, e.synced = want, true
	return nil
}

func (e *Enforcer) loop(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.Sync(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("isolation between Apps", "err", err)
		}
		e.mu.Lock()
		none := len(e.apps) == 0
		e.mu.Unlock()
		if !none { // no App, no counter to read
			e.count(ctx)
		}
	}
}

// count reads the refusal counters and records an event on each App whose
// count grew since the last read.
func (e *Enforcer) count(ctx context.Context) {
	counts, err := e.cfg.Firewall.RefusedCounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("read the refused connections", "err", err)
		}
		return
	}
	e.mu.Lock()
	prev, first := e.counts, !e.counted
	e.counts, e.counted = counts, true
	e.mu.Unlock()
	if first {
		return // counts from before this daemon: already reported
	}
	for app, n := range counts {
		if n <= prev[app] {
			continue
		}
		ev := api.Event{Time: time.Now().UTC(), Kind: "App", Name: app, Type: api.EventWarning, Reason: ReasonConnectionRefused,
			Message: fmt.Sprintf("the firewall refused %d connection attempts to the App's replicas: only the ingress, the App's own replicas and the Apps its spec.network.allowFrom selects may connect", n-prev[app])}
		if err := e.cfg.Events.AddEvent(ctx, ev); err != nil && ctx.Err() == nil {
			e.log.Warn("record event", "app", app, "err", err)
		}
	}
}

// Describe implements prometheus.Collector.
func (e *Enforcer) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

// Collect implements prometheus.Collector: the refused connections of
// every App, as last read (within Interval).
func (e *Enforcer) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.apps {
		name := a.Metadata.Name
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(e.counts[name]), name)
	}
}

var _ prometheus.Collector = (*Enforcer)(nil)

// EnableBridgeFilter makes bridged IPv4 traffic pass iptables (the
// sysctl at path, net.bridge.bridge-nf-call-iptables), loading the
// br_netfilter module when the sysctl does not exist yet. It fails with
// ErrUnavailable when that cannot be done.
func EnableBridgeFilter(path string) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		if out, merr := exec.Command("modprobe", "br_netfilter").CombinedOutput(); merr != nil {
			return errdefs.Unavailable("the isolation between Apps needs the kernel's bridge netfilter: load it with modprobe br_netfilter (%v: %s)", merr, strings.TrimSpace(string(out)))
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return errdefs.Unavailable("read %s: %v: the isolation between Apps needs the kernel's bridge netfilter (br_netfilter)", path, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return errdefs.Unavailable("turn on %s: %v: the isolation between Apps needs it", path, err)
	}
	return nil
}
