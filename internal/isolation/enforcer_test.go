package isolation

import (
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/network/firewall"
)

type fakeFirewall struct {
	mu     sync.Mutex
	sets   [][]firewall.AppPolicy
	counts map[string]uint64
}

func (f *fakeFirewall) SetApps(_ context.Context, apps []firewall.AppPolicy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, apps)
	return nil
}

func (f *fakeFirewall) RefusedCounts(context.Context) (map[string]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]uint64{}
	for k, v := range f.counts {
		out[k] = v
	}
	return out, nil
}

func (f *fakeFirewall) last() []firewall.AppPolicy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets[len(f.sets)-1]
}

type fakeStore struct {
	mu     sync.Mutex
	apps   []api.App
	events []api.Event
}

func (s *fakeStore) ListApps(context.Context) ([]api.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.App(nil), s.apps...), nil
}

func (s *fakeStore) AddEvent(_ context.Context, e api.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func sysctlFile(t *testing.T, v string) string {
	p := filepath.Join(t.TempDir(), "bridge-nf-call-iptables")
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnforcer: replicas added and removed change the rules before the
// call returns, an unchanged state applies nothing, and a grown refusal
// counter becomes an event and the metric (counts from before the start
// do not).
func TestEnforcer(t *testing.T) {
	ctx := context.Background()
	fw := &fakeFirewall{counts: map[string]uint64{"a": 4}}
	st := &fakeStore{apps: []api.App{mkApp("a", nil, api.NetworkPeer{App: "b"}), mkApp("b", nil)}}
	sysctl := sysctlFile(t, "0\n")
	e := New(Config{Firewall: fw, Apps: st, Events: st, Interval: time.Hour, BridgeSysctl: sysctl})
	if err := e.Start(ctx, map[string]Replica{"c1": {"a", netip.MustParseAddr("10.89.0.2")}}); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if b, _ := os.ReadFile(sysctl); strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("bridge netfilter sysctl is %q, want 1", b)
	}
	if got := fw.last(); len(got) != 2 || len(got[0].IPs) != 1 || len(got[0].From) != 0 {
		t.Fatalf("rules at start: %+v", got)
	}
	if err := e.Add(ctx, "c2", Replica{"b", netip.MustParseAddr("10.89.0.3")}); err != nil {
		t.Fatal(err)
	}
	if got := fw.last(); got[0].From == nil || got[0].From[0] != netip.MustParseAddr("10.89.0.3") {
		t.Fatalf("b's replica is not allowed into a: %+v", got)
	}
	n := len(fw.sets)
	if err := e.Sync(ctx); err != nil || len(fw.sets) != n {
		t.Fatalf("an unchanged state applied the rules again (%v)", err)
	}
	if err := e.Remove(ctx, "not-a-replica"); err != nil || len(fw.sets) != n {
		t.Fatalf("removing a plain container applied the rules (%v)", err)
	}
	if err := e.Remove(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if got := fw.last(); got[0].From != nil || got[1].IPs != nil {
		t.Fatalf("a removed replica keeps its rights: %+v", got)
	}

	e.count(ctx) // the first read: counts from before this daemon
	if len(st.events) != 0 {
		t.Fatalf("events for old refusals: %+v", st.events)
	}
	fw.mu.Lock()
	fw.counts["a"] = 7
	fw.mu.Unlock()
	e.count(ctx)
	e.count(ctx)
	if len(st.events) != 1 || st.events[0].Name != "a" || st.events[0].Reason != ReasonConnectionRefused ||
		!strings.Contains(st.events[0].Message, "refused 3 connection attempts") {
		t.Fatalf("events: %+v", st.events)
	}
	want := `
# HELP skiff_network_refused_total Connections to an App's replicas refused by the firewall, from sources its spec.network.allowFrom does not allow (packets).
# TYPE skiff_network_refused_total counter
skiff_network_refused_total{app="a"} 7
skiff_network_refused_total{app="b"} 0
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if got, _ := io.ReadAll(w.Body); strings.TrimSpace(string(got)) != strings.TrimSpace(want) {
		t.Fatalf("metrics:\n%s\nwant:\n%s", got, want)
	}
}

func TestEnableBridgeFilterMissing(t *testing.T) {
	// A sysctl that cannot exist: modprobe cannot make it appear.
	err := EnableBridgeFilter(filepath.Join(t.TempDir(), "no", "such", "sysctl"))
	if err == nil || !strings.Contains(err.Error(), "bridge netfilter") {
		t.Fatalf("got %v, want an error naming the bridge netfilter", err)
	}
}
