// Command gitopsbench measures how long a commit takes to serve: from
// the commit written to a source's repository to 20 answers in a row
// through the ingress from the new revision, with a webhook call and with
// polling. It prints a markdown table of medians.
//
// It needs a running daemon (-socket) that holds the image hello, and
// git. The repository is a directory the daemon reads over file://; the
// webhook call is a generic one (bearer token) on the API socket. The
// client side is one Go process with keep-alive connections, so the
// figures are the daemon's, not process start-ups'.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

var (
	socket   = flag.String("socket", client.DefaultSocket, "daemon socket")
	n        = flag.Int("n", 5, "rounds of each trigger")
	interval = flag.Duration("interval", 5*time.Second, "the polling source's interval")
	work     = flag.String("work", "", "directory for the repository (default: a temporary one)")
)

const appName = "gitops-bench"

func main() {
	flag.Parse()
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gitopsbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	cl      *client.Client
	sock    *http.Client
	web     *http.Client
	ingress string
	repo    string
}

func run(ctx context.Context) error {
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "gitopsbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	b := &bench{cl: client.New(*socket), repo: filepath.Join(dir, "repo"),
		web: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		sock: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", *socket)
		}}}}
	info, err := b.cl.Info(ctx)
	if err != nil {
		return err
	}
	b.ingress = info.IngressAddr
	if err := os.MkdirAll(b.repo, 0o755); err != nil {
		return err
	}
	if err := b.git("init", "-q", "-b", "main"); err != nil {
		return err
	}
	if err := b.commit("0"); err != nil {
		return err
	}
	const secret = "gitops-bench-hook"
	token := fmt.Sprintf("%x", time.Now().UnixNano())
	if _, err := b.cl.CreateSecret(ctx, secret, map[string][]byte{"token": []byte(token)}); err != nil {
		return err
	}
	defer b.cl.RemoveSecret(context.Background(), secret)
	defer b.cl.DeleteApp(context.Background(), appName)
	hook, err := b.rounds(ctx, "webhook", api.SourceSpec{Interval: api.Duration{Duration: time.Hour}, WebhookSecret: secret}, func(i int) error {
		return b.hook(ctx, "gitops-bench", token, i)
	})
	if err != nil {
		return err
	}
	poll, err := b.rounds(ctx, "poll", api.SourceSpec{Interval: api.Duration{Duration: *interval}}, nil)
	if err != nil {
		return err
	}
	fmt.Printf("## GitOps: commit → new revision serving 100%% (%d rounds, medians)\n\n", *n)
	fmt.Println("| Trigger | skiff (ms) | target (ms) | rounds (ms) |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| webhook | %d | ≤ 1000 | %s |\n", median(hook), list(hook))
	fmt.Printf("| polling every %s | %d | ≤ %d | %s |\n", *interval, median(poll), (*interval + time.Second).Milliseconds(), list(poll))
	fmt.Println("| Flux / Argo CD default polling (not run here) | 60000–180000 | | |")
	return nil
}

// rounds adds a source named after what, then n times commits a new
// version, calls trigger (nil: waits for polling) and times until it
// serves; the source is removed at the end (the App stays, for the next).
func (b *bench) rounds(ctx context.Context, what string, spec api.SourceSpec, trigger func(i int) error) ([]time.Duration, error) {
	name := "gitops-bench"
	if trigger == nil {
		name = "gitops-bench-poll"
	}
	spec.Git = "file://" + b.repo
	if _, err := b.cl.AddSource(ctx, api.Source{Name: name, Spec: spec}); err != nil {
		return nil, err
	}
	defer b.cl.RemoveSource(context.Background(), name)
	if _, err := b.cl.SyncSource(ctx, name); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := 1; i <= *n; i++ {
		if trigger == nil {
			time.Sleep(time.Duration(i) * *interval / time.Duration(*n+1)) // land anywhere in the interval
		}
		v := fmt.Sprintf("%s-%d", what, i)
		if err := b.commit(v); err != nil {
			return nil, err
		}
		start := time.Now()
		if trigger != nil {
			if err := trigger(i); err != nil {
				return nil, err
			}
		}
		if err := b.waitServing(v, start.Add(time.Minute)); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func (b *bench) git(args ...string) error {
	cmd := exec.Command("git", append([]string{"-C", b.repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) commit(version string) error {
	doc := fmt.Sprintf(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: %s}
spec:
  image: hello
  port: 8080
  env: [{name: VERSION, value: "%s"}]
  scale: {min: 1, max: 1}
  probes: {readiness: {http: /healthz}}
`, appName, version)
	if err := os.WriteFile(filepath.Join(b.repo, "app.yaml"), []byte(doc), 0o644); err != nil {
		return err
	}
	if err := b.git("add", "-A"); err != nil {
		return err
	}
	return b.git("commit", "-q", "-m", "version "+version)
}

func (b *bench) hook(ctx context.Context, source, token string, i int) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://skiff/hooks/sources/"+source, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Skiff-Delivery", fmt.Sprintf("bench-%d-%d", i, time.Now().UnixNano()))
	resp, err := b.sock.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("webhook: %s: %s", resp.Status, body)
	}
	return nil
}

// waitServing returns once 20 answers in a row come from version.
func (b *bench) waitServing(version string, deadline time.Time) error {
	want := "version " + version + "\n"
	for time.Now().Before(deadline) {
		ok := 0
		for ; ok < 20; ok++ {
			req, _ := http.NewRequest("GET", "http://"+b.ingress+"/", nil)
			req.Host = appName + ".localhost"
			resp, err := b.web.Do(req)
			if err != nil {
				break
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasSuffix(string(body), want) {
				break
			}
		}
		if ok == 20 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("version %s not served within a minute", version)
}

func median(ds []time.Duration) int64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2].Milliseconds()
}

func list(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprint(d.Milliseconds()))
	}
	return strings.Join(parts, " ")
}
