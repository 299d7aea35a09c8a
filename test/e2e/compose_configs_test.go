package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

const composeConfigs = `name: ccfg
services:
  app:
    build: ./img
    image: localhost/ccfg-app:1
    command: ["sleep", "1005"]
    stop_grace_period: 1s
    configs:
      - source: conf
        target: /etc/app/conf.txt
        mode: 0440
        uid: "10"
        gid: "20"
      - source: inline
        target: /opt/new/dir/inline.txt
configs:
  conf: {environment: CCFG_CONF}
  inline: {content: "inline-content"}
`

// TestComposeConfigs: a config from an environment variable lands at
// /etc/app/conf.txt with its mode, uid and gid, copied in before the
// container starts, next to the image's /etc/app/image.txt, which stays
// visible (no mount over /etc/app); an inline config lands in
// directories the image lacks; up warns about nothing. A changed
// variable recreates the service on up.
func TestComposeConfigs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"compose.yaml":   composeConfigs,
		"img/Dockerfile": "FROM busybox\nRUN mkdir -p /etc/app && echo from-the-image > /etc/app/image.txt\n",
	})
	base := []string{"compose", "-f", filepath.Join(dir, "compose.yaml")}
	t.Setenv("CCFG_CONF", "from-the-environment")
	t.Cleanup(func() { skiff(append(base, "down")...) })
	if out := composeRun(t, base, "up", "-d"); strings.Contains(out, "WARNING") || strings.Contains(out, "unsupported") {
		t.Errorf("up warns about configs:\n%s", out)
	}
	cat := composeRun(t, base, "exec", "app", "cat", "/etc/app/conf.txt", "/etc/app/image.txt", "/opt/new/dir/inline.txt")
	if !strings.Contains(cat, "from-the-environmentfrom-the-image\ninline-content") {
		t.Fatalf("config and image files:\n%s", cat)
	}
	st := composeRun(t, base, "exec", "app", "stat", "-c", "%n %a %u %g", "/etc/app/conf.txt", "/opt/new/dir/inline.txt")
	for _, want := range []string{"/etc/app/conf.txt 440 10 20", "/opt/new/dir/inline.txt 444 0 0"} {
		if !strings.Contains(st, want) {
			t.Fatalf("stat lacks %q:\n%s", want, st)
		}
	}
	if m := composeRun(t, base, "exec", "app", "cat", "/proc/mounts"); strings.Contains(m, " /etc/app") || strings.Contains(m, " /opt/new") {
		t.Fatalf("a config is mounted, not copied:\n%s", m)
	}

	t.Setenv("CCFG_CONF", "changed")
	composeRun(t, base, "up", "-d")
	if cat := composeRun(t, base, "exec", "app", "cat", "/etc/app/conf.txt"); !strings.Contains(cat, "changed") {
		t.Fatalf("up after the config changed: the container still has\n%s", cat)
	}
}
