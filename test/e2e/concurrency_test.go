package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// rapidApp is an App whose spec differs only in the value of VERSION.
func rapidApp(name string, version int) string {
	return helloApp(name, fmt.Sprintf("v%d", version), "  scale: {min: 0}\n")
}

func appVersion(a api.App) string {
	for _, e := range a.Spec.Env {
		if e.Name == "VERSION" {
			return e.Value
		}
	}
	return ""
}

// settledApp waits until the controller has acted on the App's latest
// generation (and once more after a resync, so that a late status write
// would show), and returns the App as stored then.
func settledApp(t *testing.T, d *Daemon, name string) api.App {
	t.Helper()
	var a api.App
	eventually(t, time.Minute, name+" observed at its generation", func() bool {
		a = getApp(t, d, name)
		return a.Status.ObservedGeneration == a.Metadata.Generation
	})
	time.Sleep(2500 * time.Millisecond) // one resync of every App
	eventually(t, time.Minute, name+" observed at its generation", func() bool {
		a = getApp(t, d, name)
		return a.Status.ObservedGeneration == a.Metadata.Generation
	})
	return a
}

// latestRevisionVersion is the VERSION of the App's newest revision.
func latestRevisionVersion(t *testing.T, d *Daemon, name string) string {
	t.Helper()
	var revs []api.Revision
	if err := json.Unmarshal([]byte(must(t, d, "get", "revisions", name, "-o", "json")), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) == 0 {
		t.Fatalf("%s has no revisions", name)
	}
	for _, e := range revs[len(revs)-1].Spec.Env {
		if e.Name == "VERSION" {
			return e.Value
		}
	}
	return ""
}

// applyRapidly applies name with VERSION v1..vN one after the other, each
// as soon as the previous one is acknowledged, and returns how many were.
func applyRapidly(t *testing.T, d *Daemon, name string, n int) int {
	acked := 0
	for v := 1; v <= n; v++ {
		if r := applyYAML(t, d, rapidApp(name, v)); r.Code != 0 {
			t.Errorf("apply %s v%d: %s", name, v, r)
			continue
		}
		acked++
	}
	return acked
}

// checkLastApplied checks that an App applied n times in a row with a
// different spec each time holds the last spec at generation n, and that
// the controller converged on it.
func checkLastApplied(t *testing.T, d *Daemon, name string, n int) {
	t.Helper()
	a := settledApp(t, d, name)
	want := fmt.Sprintf("v%d", n)
	if a.Metadata.Generation != int64(n) || appVersion(a) != want {
		t.Errorf("%s after %d acknowledged applies: generation %d, VERSION %s; want generation %d, VERSION %s",
			name, n, a.Metadata.Generation, appVersion(a), n, want)
	}
	if got := latestRevisionVersion(t, d, name); got != want {
		t.Errorf("%s: newest revision runs VERSION %s, want %s", name, got, want)
	}
}

// TestRapidAppliesLoseNothing: 30 applies of one App in quick succession
// all count, and the last one is what stays stored.
func TestRapidAppliesLoseNothing(t *testing.T) {
	d := env.daemon
	const n = 30
	t.Cleanup(func() { d.Run("", "delete", "app", "rapid") })
	if acked := applyRapidly(t, d, "rapid", n); acked != n {
		t.Fatalf("%d of %d applies acknowledged", acked, n)
	}
	checkLastApplied(t, d, "rapid", n)
}

// TestParallelAppliesLoseNothing: 30 applies of one App at once, each
// with a different spec: every one is acknowledged and counted once.
func TestParallelAppliesLoseNothing(t *testing.T) {
	d := env.daemon
	const n = 30
	t.Cleanup(func() { d.Run("", "delete", "app", "crowd") })
	var wg sync.WaitGroup
	results := make([]Result, n+1)
	for v := 1; v <= n; v++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[v] = applyYAML(t, d, rapidApp("crowd", v))
		}()
	}
	wg.Wait()
	for v := 1; v <= n; v++ {
		if results[v].Code != 0 {
			t.Fatalf("apply v%d: %s", v, results[v])
		}
	}
	// Every apply changed the spec it found: 30 spec changes.
	right := getApp(t, d, "crowd")
	a := settledApp(t, d, "crowd")
	if a.Metadata.Generation != n {
		t.Fatalf("generation %d after %d acknowledged applies of different specs", a.Metadata.Generation, n)
	}
	if appVersion(a) != appVersion(right) || appVersion(a) == "" {
		t.Fatalf("VERSION %s once the controller acted, %s when the applies returned", appVersion(a), appVersion(right))
	}
	if got := latestRevisionVersion(t, d, "crowd"); got != appVersion(a) {
		t.Fatalf("newest revision runs VERSION %s, the App holds %s", got, appVersion(a))
	}
}

// TestParallelAppsRapidApplies: three Apps applied 15 times each, the
// three at once.
func TestParallelAppsRapidApplies(t *testing.T) {
	d := env.daemon
	const n = 15
	names := []string{"trio-a", "trio-b", "trio-c"}
	var wg sync.WaitGroup
	acked := make([]int, len(names))
	for i, name := range names {
		t.Cleanup(func() { d.Run("", "delete", "app", name) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			acked[i] = applyRapidly(t, d, name, n)
		}()
	}
	wg.Wait()
	for i, name := range names {
		if acked[i] != n {
			t.Fatalf("%s: %d of %d applies acknowledged", name, acked[i], n)
		}
	}
	for _, name := range names {
		checkLastApplied(t, d, name, n)
	}
}

// TestApplyStaleResourceVersion: a file that carries the resourceVersion
// it was read at is applied only while the App is still at it.
func TestApplyStaleResourceVersion(t *testing.T) {
	d := env.daemon
	t.Cleanup(func() { d.Run("", "delete", "app", "pinned") })
	if r := applyYAML(t, d, rapidApp("pinned", 1)); r.Code != 0 {
		t.Fatalf("apply: %s", r)
	}
	saved := must(t, d, "get", "apps", "pinned", "-o", "yaml")
	read := getApp(t, d, "pinned").Metadata.ResourceVersion
	if read == "" || !strings.Contains(saved, "resourceVersion: ") {
		t.Fatalf("no resourceVersion in the App read back:\n%s", saved)
	}
	if r := applyYAML(t, d, rapidApp("pinned", 2)); r.Code != 0 {
		t.Fatalf("apply v2: %s", r)
	}
	// The saved file, edited to v3, was read before v2 was applied.
	r := applyYAML(t, d, strings.Replace(saved, `value: v1`, `value: v3`, 1))
	if r.Code == 0 || !strings.Contains(r.Stderr, "was changed since it was read") || !strings.Contains(r.Stderr, "read it again and retry") {
		t.Fatalf("apply of a stale file: want a conflict, got %s", r)
	}
	a := getApp(t, d, "pinned")
	if appVersion(a) != "v2" || a.Metadata.Generation != 2 {
		t.Fatalf("after the refused apply: VERSION %s, generation %d; want v2, 2", appVersion(a), a.Metadata.Generation)
	}
	// Read again, the same edit goes in (retried, as the message says,
	// if a status write comes between the read and the apply).
	for try := 1; ; try++ {
		fresh := must(t, d, "get", "apps", "pinned", "-o", "yaml")
		r := applyYAML(t, d, strings.Replace(fresh, `value: v2`, `value: v3`, 1))
		if r.Code == 0 {
			break
		}
		if try == 10 || !strings.Contains(r.Stderr, "was changed since it was read") {
			t.Fatalf("apply of a fresh file (try %d): %s", try, r)
		}
	}
	if a := getApp(t, d, "pinned"); appVersion(a) != "v3" || a.Metadata.Generation != 3 {
		t.Fatalf("after the fresh apply: VERSION %s, generation %d; want v3, 3", appVersion(a), a.Metadata.Generation)
	}
}
