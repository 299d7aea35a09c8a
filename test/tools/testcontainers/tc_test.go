// Package testcontainers runs Testcontainers for Go against skiff's
// Docker API, as a team's integration tests would: test/e2e runs it with
// DOCKER_HOST pointing at a daemon started with --docker-socket.
package testcontainers

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestContainerLifecycle starts a web server container with a log and
// a port wait strategy, reads it through its mapped port, execs in it,
// reads its logs and terminates it.
func TestContainerLifecycle(t *testing.T) {
	image := os.Getenv("SKIFF_TC_IMAGE")
	if image == "" {
		t.Fatal("SKIFF_TC_IMAGE must name a busybox image the daemon has")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        image,
			Cmd:          []string{"sh", "-c", "mkdir -p /www; echo hello from skiff > /www/index.html; httpd -f -p 8080 -h /www & trap 'kill $!; exit 0' TERM; echo server ready; wait"},
			ExposedPorts: []string{"8080/tcp"},
			Labels:       map[string]string{"suite": "testcontainers"},
			WaitingFor: wait.ForAll(
				wait.ForLog("server ready"),
				wait.ForListeningPort("8080/tcp"),
			).WithDeadline(time.Minute),
		},
		Started: true,
	})
	if err != nil {
		t.Fatalf("start the container: %v", err)
	}
	defer func() {
		if err := c.Terminate(context.Background()); err != nil {
			t.Errorf("terminate: %v", err)
		}
	}()
	host, err := c.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := c.MappedPort(ctx, "8080/tcp")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + host + ":" + port.Port() + "/index.html")
	if err != nil {
		t.Fatalf("GET through the mapped port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from skiff\n" {
		t.Errorf("GET through the mapped port = %q", body)
	}
	code, out, err := c.Exec(ctx, []string{"sh", "-c", "echo exec-out; exit 5"})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	b, _ := io.ReadAll(out)
	if code != 5 || !strings.Contains(string(b), "exec-out") {
		t.Errorf("exec = %d %q, want 5 with exec-out", code, b)
	}
	logs, err := c.Logs(ctx)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	b, _ = io.ReadAll(logs)
	logs.Close()
	if !strings.Contains(string(b), "server ready") {
		t.Errorf("logs = %q", b)
	}
	if err := c.CopyToContainer(ctx, []byte("copied\n"), "/www/copied.txt", 0o644); err != nil {
		t.Fatalf("copy to the container: %v", err)
	}
	rc, err := c.CopyFileFromContainer(ctx, "/www/copied.txt")
	if err != nil {
		t.Fatalf("copy from the container: %v", err)
	}
	b, _ = io.ReadAll(rc)
	rc.Close()
	if string(b) != "copied\n" {
		t.Errorf("file copied back = %q", b)
	}
	state, err := c.State(ctx)
	if err != nil || !state.Running {
		t.Errorf("state = %+v, %v", state, err)
	}
}
