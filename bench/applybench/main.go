// Command applybench checks that no acknowledged apply is lost when Apps
// are applied rapidly, and prints a markdown table. It applies Apps whose
// specs differ only in the value of one environment variable, through the
// API call `skiff apply` makes (POST /v1/apps), in three runs:
//
//   - N applies of one App in a row, each as soon as the previous one is
//     acknowledged;
//   - N applies of one App at once;
//   - A Apps applied P times each in a row, the A at once.
//
// Once the controller has acted on each App's latest generation and one
// resync has passed, it reads each App back. An acknowledged apply is
// present when no other acknowledged apply was given the same
// generation, its generation is at most the stored one, and, for the
// apply given the stored generation, the stored spec is its spec. Every
// applied spec differs from every other, so the stored generation must
// equal the number of acknowledged applies.
//
// It needs a running daemon (-socket) that holds the image hello. The
// Apps have scale.min 0, so no replica starts: the controller still
// creates revisions and writes status while the applies arrive.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

var (
	socket  = flag.String("socket", client.DefaultSocket, "daemon socket")
	n       = flag.Int("n", 30, "applies of one App (in a row, then at once)")
	apps    = flag.Int("apps", 3, "Apps applied at once in the third run")
	perApp  = flag.Int("per-app", 15, "applies of each App in the third run")
	timeout = flag.Duration("timeout", 2*time.Minute, "bound on each run")
)

func main() {
	flag.Parse()
	cl := client.New(*socket)
	fmt.Println("### Rapid applies: every acknowledged apply kept")
	fmt.Println()
	fmt.Println("Apps differing only in one env value, applied through `POST /v1/apps` (what `skiff apply` sends); `scale.min: 0`.")
	fmt.Println()
	fmt.Println("| run | applies acknowledged | applies present | generation (want) | stored spec (last acknowledged) | wall time | apply p50 / max |")
	fmt.Println("|---|---|---|---|---|---|---|")
	failed := false
	runs := []struct {
		title string
		names []string
		count int
		par   bool
	}{
		{fmt.Sprintf("%d applies of one App in a row", *n), []string{"bench-row"}, *n, false},
		{fmt.Sprintf("%d applies of one App at once", *n), []string{"bench-crowd"}, *n, true},
		{fmt.Sprintf("%d Apps × %d applies, the Apps at once", *apps, *perApp), appNames(*apps), *perApp, false},
	}
	for _, r := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		ok := run(ctx, cl, r.title, r.names, r.count, r.par)
		cancel()
		failed = failed || !ok
	}
	if failed {
		fmt.Fprintln(os.Stderr, "applybench: an acknowledged apply was lost")
		os.Exit(1)
	}
}

func appNames(k int) []string {
	var out []string
	for i := range k {
		out = append(out, fmt.Sprintf("bench-trio-%d", i))
	}
	return out
}

func spec(name string, v int) api.App {
	zero := 0
	return api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind, Metadata: api.ObjectMeta{Name: name},
		Spec: api.AppSpec{Image: "hello", Env: []api.EnvVar{{Name: "VERSION", Value: fmt.Sprintf("v%d", v)}},
			Scale: api.Scale{Min: &zero}}}
}

// ack is one acknowledged apply.
type ack struct {
	version    string
	generation int64
	took       time.Duration
}

// run applies count specs to each of names (at once when par, else in a
// row per App, the Apps at once), prints one row and reports whether
// every acknowledged apply is present.
func run(ctx context.Context, cl *client.Client, title string, names []string, count int, par bool) bool {
	acks := map[string][]ack{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	one := func(name string, v int) {
		start := time.Now()
		out, err := cl.ApplyApp(ctx, spec(name, v))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fmt.Fprintf(os.Stderr, "applybench: apply %s v%d: %v\n", name, v, err)
			return
		}
		acks[name] = append(acks[name], ack{fmt.Sprintf("v%d", v), out.Metadata.Generation, time.Since(start)})
	}
	start := time.Now()
	for _, name := range names {
		if par {
			for v := 1; v <= count; v++ {
				wg.Add(1)
				go func() { defer wg.Done(); one(name, v) }()
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := 1; v <= count; v++ {
				one(name, v)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)

	ok := true
	nAcked, nPresent := 0, 0
	var gens, stored, lastAcked string
	var took []time.Duration
	for _, name := range names {
		a, err := settled(ctx, cl, name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "applybench: %s: %v\n", name, err)
			return false
		}
		as := acks[name]
		present, last := countPresent(as, a)
		nAcked += len(as)
		nPresent += present
		gens += sep(gens) + fmt.Sprintf("%d (%d)", a.Metadata.Generation, len(as))
		stored += sep(stored) + version(a)
		lastAcked += sep(lastAcked) + last
		ok = ok && present == len(as) && a.Metadata.Generation == int64(len(as)) && version(a) == last
		for _, x := range as {
			took = append(took, x.took)
		}
		if err := cl.DeleteApp(ctx, name); err != nil {
			fmt.Fprintf(os.Stderr, "applybench: delete %s: %v\n", name, err)
		}
	}
	waitNoReplicas(ctx, cl, names)
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	lat := "–"
	if len(took) > 0 {
		lat = fmt.Sprintf("%s / %s", ms(took[len(took)/2]), ms(took[len(took)-1]))
	}
	fmt.Printf("| %s | %d | %d | %s | %s (%s) | %s | %s |\n", title, nAcked, nPresent, gens, stored, lastAcked, ms(wall), lat)
	return ok
}

// countPresent counts the acknowledged applies the stored App accounts
// for, and names the one acknowledged at the highest generation.
func countPresent(as []ack, stored api.App) (int, string) {
	byGen := map[int64]int{}
	var top ack
	for _, x := range as {
		byGen[x.generation]++
		if x.generation > top.generation {
			top = x
		}
	}
	present := 0
	for _, x := range as {
		switch {
		case byGen[x.generation] > 1, x.generation > stored.Metadata.Generation:
		case x.generation == stored.Metadata.Generation && version(stored) != x.version:
		default:
			present++
		}
	}
	return present, top.version
}

// settled waits until the controller has acted on the App's generation,
// lets one resync pass, and returns the App as stored then.
func settled(ctx context.Context, cl *client.Client, name string) (api.App, error) {
	if _, err := observed(ctx, cl, name); err != nil {
		return api.App{}, err
	}
	time.Sleep(2500 * time.Millisecond) // the controller resyncs every 2s
	return observed(ctx, cl, name)
}

// observed waits until the App's status describes its generation.
func observed(ctx context.Context, cl *client.Client, name string) (api.App, error) {
	for {
		a, err := cl.App(ctx, name)
		if err != nil {
			return api.App{}, err
		}
		if a.Status.ObservedGeneration == a.Metadata.Generation {
			return a, nil
		}
		select {
		case <-ctx.Done():
			return api.App{}, fmt.Errorf("generation %d not observed: %w", a.Metadata.Generation, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitNoReplicas waits until the deleted Apps' replicas are gone, so that
// what runs next is not measured beside their draining.
func waitNoReplicas(ctx context.Context, cl *client.Client, names []string) {
	for {
		reps, err := cl.Replicas(ctx, "")
		if err != nil {
			return
		}
		left := 0
		for _, r := range reps {
			for _, n := range names {
				if r.App == n {
					left++
				}
			}
		}
		if left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "applybench: %d replicas of deleted Apps still there\n", left)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func version(a api.App) string {
	for _, e := range a.Spec.Env {
		if e.Name == "VERSION" {
			return e.Value
		}
	}
	return ""
}

func sep(s string) string {
	if s == "" {
		return ""
	}
	return ", "
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
