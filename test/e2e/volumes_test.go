package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVolumeFilledFromImage checks that a new, empty named volume mounted
// over a directory of the image is first filled with its files, owners
// and modes, as Docker does; a volume that has data keeps it.
func TestVolumeFilledFromImage(t *testing.T) {
	dir := t.TempDir()
	df := "FROM busybox\nRUN mkdir -p /srv/data/sub && echo seed > /srv/data/seed && ln -s seed /srv/data/link && chown -R 1000:50 /srv/data && chmod 750 /srv/data && chmod 640 /srv/data/seed\n"
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
	must(t, env.daemon, "image", "build", "-q", "-t", "volseed", dir)
	t.Cleanup(func() {
		skiff("rm", "-f", "volseed-a")
		skiff("volume", "rm", "vseed")
		skiff("image", "rm", "volseed")
	})
	out := must(t, env.daemon, "run", "--rm", "-v", "vseed:/srv/data", "volseed", "sh", "-c",
		"stat -c '%n %u:%g %a' /srv/data /srv/data/seed /srv/data/sub; readlink /srv/data/link; cat /srv/data/seed")
	for _, want := range []string{"/srv/data 1000:50 750", "/srv/data/seed 1000:50 640", "/srv/data/sub 1000:50 755", "seed\nseed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the volume was not filled from the image: no %q in:\n%s", want, out)
		}
	}
	// Data written stays, and is not overwritten by the image's again.
	must(t, env.daemon, "run", "--rm", "-v", "vseed:/srv/data", "volseed", "sh", "-c", "echo mine > /srv/data/seed")
	if out := must(t, env.daemon, "run", "--rm", "-v", "vseed:/srv/data", "volseed", "cat", "/srv/data/seed"); out != "mine\n" {
		t.Errorf("the volume's data was replaced: %q", out)
	}
	// A volume over a path that is not a directory of the image stays empty.
	if out := must(t, env.daemon, "run", "--rm", "-v", "vseed2:/nothere", "volseed", "ls", "-A", "/nothere"); out != "" {
		t.Errorf("a volume over a missing directory got files: %q", out)
	}
	must(t, env.daemon, "volume", "rm", "vseed2")
}

// TestVolumeLifecycle checks create/ls/inspect/rm/prune: rm and prune
// refuse or keep a volume a container uses, even a stopped one.
func TestVolumeLifecycle(t *testing.T) {
	t.Cleanup(func() {
		skiff("rm", "-f", "vuser")
		skiff("volume", "rm", "vused", "vfree", "vlabel")
	})
	must(t, env.daemon, "volume", "create", "--label", "team=db", "vlabel")
	if out := must(t, env.daemon, "volume", "inspect", "vlabel"); !strings.Contains(out, `"team": "db"`) {
		t.Errorf("inspect lacks the label:\n%s", out)
	}
	must(t, env.daemon, "volume", "create", "vfree")
	must(t, env.daemon, "run", "--name", "vuser", "-v", "vused:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if out := must(t, env.daemon, "volume", "ls"); !strings.Contains(out, "vused") || !strings.Contains(out, "vuser") {
		t.Errorf("ls does not show vused used by vuser:\n%s", out)
	}
	fails(t, env.daemon, []string{"vused", "in use", "vuser"}, "volume", "rm", "vused")
	out := must(t, env.daemon, "volume", "prune")
	if !strings.Contains(out, "vfree") || !strings.Contains(out, "vlabel") || strings.Contains(out, "vused") {
		t.Errorf("prune removed the wrong volumes:\n%s", out)
	}
	if out := must(t, env.daemon, "run", "--rm", "-v", "vused:/data", "busybox", "cat", "/data/f"); out != "kept\n" {
		t.Errorf("the volume lost its data: %q", out)
	}
	must(t, env.daemon, "rm", "vuser")
	must(t, env.daemon, "volume", "rm", "vused")
	fails(t, env.daemon, []string{"no such volume"}, "volume", "inspect", "vused")
}
