package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/controller"
)

// rawAPI sends a request straight to the daemon's socket.
func rawAPI(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", env.daemon.Socket)
	}}}
	req, _ := http.NewRequest(method, "http://skiff"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIBadInput(t *testing.T) {
	huge := `{"name":"` + strings.Repeat("a", 2<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"unknown field", "POST", "/v1/containers", `{"config":{"image":"busybox"},"colour":"red"}`, 400, `unknown field \"colour\"`},
		{"wrong type", "POST", "/v1/containers", `{"config":{"image":"busybox","cmd":"echo"}}`, 400, "config.cmd"},
		{"not json", "POST", "/v1/containers", `{config`, 400, "not valid JSON"},
		{"empty body", "POST", "/v1/containers", ``, 400, "empty"},
		{"huge body", "POST", "/v1/containers", huge, 400, "larger than"},
		{"missing image", "POST", "/v1/containers", `{"config":{}}`, 400, "image is required"},
		{"bad name", "POST", "/v1/containers", `{"name":"no spaces please","config":{"image":"busybox"}}`, 400, "invalid container name"},
		{"bad restart", "POST", "/v1/containers", `{"config":{"image":"busybox","restartPolicy":{"name":"sometimes"}}}`, 400, "unknown restart policy"},
		{"negative memory", "POST", "/v1/containers", `{"config":{"image":"busybox","resources":{"memoryBytes":-1}}}`, 400, "memory"},
		{"unknown container", "GET", "/v1/containers/nope", ``, 404, "no such container"},
		{"unknown endpoint", "GET", "/v1/teapot", ``, 404, "no API endpoint"},
		{"bad signal", "POST", "/v1/containers/nope/kill?signal=SIGNOPE", ``, 400, "unknown signal"},
		{"bad stop timeout", "POST", "/v1/containers/nope/stop?t=soon", ``, 400, "whole number"},
		{"bad bool", "GET", "/v1/containers?all=maybe", ``, 400, "true or false"},
		{"size without a terminal", "POST", "/v1/containers", `{"config":{"image":"busybox","consoleSize":{"height":24,"width":80}}}`, 400, "needs config.tty"},
		{"huge terminal", "POST", "/v1/containers", `{"config":{"image":"busybox","tty":true,"consoleSize":{"height":24,"width":5000}}}`, 400, "1..1000"},
		{"zero terminal size", "POST", "/v1/exec/nope/resize", `{"height":0,"width":80}`, 400, "1..65535"},
		{"unknown exec session", "POST", "/v1/exec/nope/resize", `{"height":24,"width":80}`, 404, "no exec session"},
	}
	before := len(skiffPsAll(t))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawAPI(t, tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s; want %d containing %q", status, truncateForLog(body), tc.status, tc.want)
			}
			if !strings.Contains(body, `"kind"`) {
				t.Fatalf("error body lacks kind: %s", body)
			}
		})
	}
	if after := len(skiffPsAll(t)); after != before {
		t.Fatalf("bad requests changed the container count: %d -> %d", before, after)
	}
}

// waitNoReplicas waits until d runs no App replica: Apps deleted by earlier
// tests are gone, so counts of host objects are this test's own.
func waitNoReplicas(t *testing.T, d *Daemon) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		var cs []api.Container
		if err := json.Unmarshal([]byte(must(t, d, "ps", "-a", "-o", "json")), &cs); err != nil {
			t.Fatal(err)
		}
		left = left[:0]
		for _, c := range cs {
			if app := c.Config.Labels[controller.LabelApp]; app != "" {
				left = append(left, fmt.Sprintf("%s (app %s, %s)", c.Name, app, c.State.Status))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			log, _ := exec.Command("tail", "-n", "40", d.Log).Output()
			t.Fatalf("replicas of deleted Apps still there after 60s: %s\ndaemon log:\n%s", strings.Join(left, ", "), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// skiffPsAll returns the IDs of all containers but App replicas, which
// Apps that other tests deleted may still be removing.
func skiffPsAll(t *testing.T) []string {
	t.Helper()
	var cs []api.Container
	out := must(t, env.daemon, "ps", "-a", "-o", "json")
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatalf("ps -a -o json: %v\n%s", err, out)
	}
	var ids []string
	for _, c := range cs {
		if c.Config.Labels[controller.LabelApp] == "" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

func truncateForLog(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

func TestCLIBadInput(t *testing.T) {
	d := env.daemon
	must(t, d, "create", "--name", "taken", "busybox", "true")
	defer d.Run("", "rm", "-f", "taken")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad memory", []string{"run", "--memory", "lots", "busybox"}, []string{"--memory", "256m"}},
		{"bad cpus", []string{"run", "--cpus", "x", "busybox"}, []string{"--cpus"}},
		{"bad restart", []string{"run", "--restart", "sometimes", "busybox"}, []string{"on-failure"}},
		{"bad restart count", []string{"run", "--restart", "on-failure:x", "busybox"}, []string{"retry count"}},
		{"rm and restart", []string{"run", "--rm", "--restart", "always", "busybox"}, []string{"conflict"}},
		{"tiny memory", []string{"run", "--memory", "1k", "busybox"}, []string{"too small"}},
		{"duplicate name", []string{"create", "--name", "taken", "busybox"}, []string{"already in use"}},
		{"unknown image", []string{"run", "nothing-here"}, []string{"not found"}},
		{"unknown flag", []string{"run", "--bogus", "busybox"}, []string{"unknown flag"}},
		{"no image", []string{"run"}, []string{"requires at least 1 arg"}},
		{"bad env file", []string{"run", "--env-file", "/no/such/file", "busybox"}, []string{"env-file"}},
		{"unknown container", []string{"stop", "ghost"}, []string{"no such container"}},
		{"bad cap", []string{"run", "--rm", "--cap-add", "FLY", "busybox", "true"}, []string{"FLY"}},
		{"bad user", []string{"run", "--rm", "-u", "nobody-here", "busybox", "true"}, []string{"nobody-here"}},
		{"run -it from a pipe", []string{"run", "-it", "busybox", "sh"}, []string{"not one", "drop -t"}},
	}
	before := len(skiffPsAll(t))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fails(t, d, tc.want, tc.args...)
			if !strings.HasPrefix(r.Stderr, "Error:") {
				t.Fatalf("error not prefixed: %s", r)
			}
		})
	}
	if after := len(skiffPsAll(t)); after != before {
		t.Fatalf("bad input changed the container count: %d -> %d", before, after)
	}
}
