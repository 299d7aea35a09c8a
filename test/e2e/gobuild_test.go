package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleGoBuild builds examples/gobuild, the two-stage Dockerfile
// that compiles a Go program with Debian's Go (localhost/debian-golang,
// made as make base-images makes it) and ships the static binary alone
// FROM scratch, and runs the result.
func TestExampleGoBuild(t *testing.T) {
	d := env.daemon
	baseImage(t, d, "debian-golang")
	r := runLong(d, 15*time.Minute, "image", "build", "-t", "greet-example", filepath.Join(env.repo, "examples", "gobuild"))
	if r.Code != 0 {
		t.Fatalf("build examples/gobuild: %s", r)
	}
	if out := must(t, d, "run", "--rm", "greet-example"); out != "hello, world\n" {
		t.Errorf("run printed %q, want the CMD's greeting", out)
	}
	if out := must(t, d, "run", "--rm", "greet-example", "-upper", "skiff"); out != "HELLO, SKIFF\n" {
		t.Errorf("run with arguments printed %q", out)
	}
	if out := must(t, d, "run", "--rm", "greet-example", "-version"); !strings.HasPrefix(out, "greet built with go1.") {
		t.Errorf("-version printed %q", out)
	}
	// The image is the binary alone: one layer holding /greet, run as
	// nobody.
	dirs := storeLayerDirs(t, d, "localhost/greet-example:latest")
	if len(dirs) != 1 {
		t.Fatalf("the image has %d layers, want 1", len(dirs))
	}
	ents, err := os.ReadDir(dirs[0])
	if err != nil || len(ents) != 1 || ents[0].Name() != "greet" {
		t.Errorf("the layer holds %v (%v), want only greet", ents, err)
	}
	if out := must(t, d, "image", "inspect", "greet-example"); !strings.Contains(out, "65534:65534") {
		t.Errorf("inspect does not show USER 65534:65534:\n%s", out)
	}
}
