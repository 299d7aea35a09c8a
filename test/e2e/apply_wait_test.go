package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestApplyWait: apply --wait returns once the App is Ready, and fails
// naming the condition when it cannot become so.
func TestApplyWait(t *testing.T) {
	d := env.daemon
	path := t.TempDir() + "/app.yaml"
	writeText(t, path, helloApp("waited", "1", ""))
	defer d.Run("", "delete", "app", "waited")
	r := d.Run("", "apply", "-f", path, "--wait", "--timeout", "60s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "app/waited created\napp/waited ready: http://waited.localhost") {
		t.Fatalf("apply --wait: %s", r)
	}
	// Ready when it returned: the ingress serves it at once.
	if code, body := get(t, ingressAddr(t, d), "waited.localhost", "/"); code != 200 || !strings.Contains(body, "version 1") {
		t.Fatalf("right after apply --wait: %d %s", code, body)
	}
	writeText(t, path, strings.Replace(helloApp("waited", "2", ""), "image: hello", "image: no-such-image", 1))
	r = d.Run("", "apply", "-f", path, "--wait", "--timeout", "60s")
	if r.Code == 0 || !strings.Contains(r.Stderr, "app/waited: ImageNotFound") {
		t.Fatalf("apply --wait of a missing image: %s", r)
	}
	// A probe that never passes: the wait runs out and names the condition.
	writeText(t, path, strings.Replace(helloApp("waited", "3", ""), "/healthz", "/no-such-path", 1))
	r = d.Run("", "apply", "-f", path, "--wait", "--timeout", "3s")
	if r.Code == 0 || !strings.Contains(r.Stderr, "not ready after 3s") || !strings.Contains(r.Stderr, "app/waited:") {
		t.Fatalf("apply --wait of a revision that never gets ready: %s", r)
	}
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNewAppRoutedAtOnce: from the moment apply is acknowledged the App's
// host is routed: a request sent right after is held until the first
// revision is ready, never answered 404; an App whose image does not
// resolve is answered 503 with the reason, without waiting out the queue.
func TestNewAppRoutedAtOnce(t *testing.T) {
	d := env.daemon
	addr := ingressAddr(t, d)
	for i := range 3 {
		name := fmt.Sprintf("atonce-%d", i)
		path := t.TempDir() + "/app.yaml"
		writeText(t, path, helloApp(name, "1", ""))
		if r := d.Run("", "apply", "-f", path); r.Code != 0 {
			t.Fatal(r)
		}
		code, body := get(t, addr, name+".localhost", "/")
		d.Run("", "delete", "app", name)
		if code != 200 || !strings.Contains(body, "version 1") {
			t.Fatalf("right after apply of %s: %d %q, want the App's answer", name, code, body)
		}
	}
	path := t.TempDir() + "/app.yaml"
	writeText(t, path, strings.Replace(helloApp("noimage", "1", ""), "image: hello", "image: no-such-image", 1))
	if r := d.Run("", "apply", "-f", path); r.Code != 0 {
		t.Fatal(r)
	}
	defer d.Run("", "delete", "app", "noimage")
	start := time.Now()
	code, body := get(t, addr, "noimage.localhost", "/")
	if code != 503 || !strings.Contains(body, "ImageNotFound") {
		t.Fatalf("an App whose image does not resolve: %d %q, want 503 naming ImageNotFound", code, body)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the 503 took %v: it waited instead of saying why", took)
	}
}
