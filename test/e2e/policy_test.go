package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// policyRules is the policy file of the policy daemon: images only from
// the local store (no registry host in the reference) or localhost/.
const policyRules = `
- name: trusted-registry
  match: container
  expression: '!object.config.image.contains("/") || object.config.image.startsWith("localhost/")'
  message: images must come from the local store
  fix: build or import the image locally, or push it to localhost/
  field: config.image
- name: app-trusted-registry
  match: app
  expression: '!object.spec.image.contains("/") || object.spec.image.startsWith("localhost/")'
  message: App images must come from the local store
  fix: build the image locally
  field: spec.image
`

// startPolicyDaemon starts a daemon with the default profile and the
// rules above; hostDir is the one host path bind mounts may use.
func startPolicyDaemon(t *testing.T, hostDir string) *Daemon {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(policyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := startDaemonWith("policy", "--policy", rules, "--allow-host-path", hostDir)
	if err != nil {
		t.Fatal(err)
	}
	extraDaemons = append(extraDaemons, d)
	if err := buildSubset(d, "busybox", "hello"); err != nil {
		t.Fatal(err)
	}
	return d
}

// noContainers fails unless d has no containers at all.
func noContainers(t *testing.T, d *Daemon, after string) {
	t.Helper()
	if out := strings.TrimSpace(must(t, d, "ps", "-a", "-q")); out != "" {
		t.Fatalf("after %s the daemon has containers: %s", after, out)
	}
}

// TestPolicyContainers: the default (baseline) profile refuses what it
// must before anything is created, naming rule, field and fix; a custom
// CEL rule refuses an image from another registry; the privileged
// profile allows --privileged.
func TestPolicyContainers(t *testing.T) {
	allowed := t.TempDir()
	os.WriteFile(filepath.Join(allowed, "in"), []byte("allowed host file\n"), 0o644)
	d := startPolicyDaemon(t, allowed)

	if out := must(t, d, "run", "--rm", "busybox", "echo", "baseline-ok"); out != "baseline-ok\n" {
		t.Fatalf("plain container under baseline: %q", out)
	}
	fails(t, d, []string{"refused by the admission policy", "rule baseline/privileged", "config.privileged",
		"fix: drop --privileged, or run the daemon with --security-profile privileged"}, "run", "--rm", "--privileged", "busybox", "true")
	fails(t, d, []string{"rule baseline/capabilities", "config.capAdd[0]", "adding capability SYS_ADMIN"}, "run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "true")
	fails(t, d, []string{"rule baseline/host-namespaces", "config.network"}, "run", "--rm", "--network", "host", "busybox", "true")
	other := t.TempDir()
	fails(t, d, []string{"rule baseline/host-path", "config.mounts[0].source", "--allow-host-path"}, "run", "--rm", "-v", other+":/mnt", "busybox", "true")
	if out := must(t, d, "run", "--rm", "-v", allowed+":/mnt:ro", "busybox", "cat", "/mnt/in"); out != "allowed host file\n" {
		t.Fatalf("bind mount from the allow list: %q", out)
	}
	fails(t, d, []string{"rule trusted-registry", "config.image", "images must come from the local store", "fix: build or import the image locally"},
		"run", "--rm", "registry.example.com/team/web:1", "true")
	fails(t, d, []string{"rule baseline/privileged"}, "create", "--privileged", "busybox", "true")
	noContainers(t, d, "refused creates")

	// The main test daemon runs --security-profile privileged.
	if out := must(t, env.daemon, "run", "--rm", "--privileged", "busybox", "sh", "-c", "grep -c ^Seccomp:.0 /proc/self/status"); out != "1\n" {
		t.Fatalf("--privileged under the privileged profile: %q", out)
	}
}

// TestPolicyApps: an App breaking the restricted profile, or choosing a
// looser profile than the daemon's, or breaking a custom rule, is refused
// at apply and nothing of it is made.
func TestPolicyApps(t *testing.T) {
	d := startPolicyDaemon(t, t.TempDir())
	fails(t, d, []string{"App locked refused by the admission policy", "rule restricted/resource-limits", "spec.resources.memory",
		"fix: set spec.resources.memory"}, "apply", "-f", writeApp(t, helloApp("locked", "1", "  security: {profile: restricted}\n")))
	fails(t, d, []string{"rule profile", "spec.security.profile", "--security-profile privileged"},
		"apply", "-f", writeApp(t, helloApp("loose", "1", "  security: {profile: privileged}\n")))
	fails(t, d, []string{"rule app-trusted-registry", "spec.image", "fix: build the image locally"},
		"apply", "-f", writeApp(t, strings.Replace(helloApp("remote", "1", ""), "image: hello", "image: quay.io/x/hello", 1)))
	for _, name := range []string{"locked", "loose", "remote"} {
		fails(t, d, []string{name}, "get", "apps", name)
	}
	if out := strings.TrimSpace(must(t, d, "get", "apps")); strings.Contains(out, "locked") || strings.Contains(out, "remote") {
		t.Fatalf("refused Apps were stored: %s", out)
	}
	noContainers(t, d, "refused applies")
	// The same daemon runs an App that meets restricted, as uid 1000 on a
	// read-only root filesystem with every capability dropped.
	must(t, d, "apply", "-f", writeApp(t, helloApp("hardened", "1", `  resources: {cpu: 500m, memory: 64Mi}
  security:
    profile: restricted
    runAsUser: 1000
    readOnlyRootFilesystem: true
    capabilities: {drop: [ALL]}
`)))
	eventually(t, 30*time.Second, "hardened ready", appReady(t, d, "hardened"))
	reps := replicasOf(t, d, "hardened")
	if len(reps) == 0 {
		t.Fatal("hardened has no replicas")
	}
	c := inspect(t, d, reps[0].ContainerID)
	if c.Config.User != "1000" || !c.Config.ReadonlyRootfs || len(c.Config.CapDrop) != 1 || c.Config.CapDrop[0] != "ALL" {
		t.Fatalf("replica config %+v does not carry spec.security", c.Config)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	mounts, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.State.Pid))
	rootRO := false
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/" && strings.HasPrefix(f[5], "ro") {
			rootRO = true
		}
	}
	// Under the App's user namespace, uid 1000 is its range's 1000th.
	uid := 1000
	if c.IDMap != nil {
		uid += int(c.IDMap.HostID)
	}
	if !strings.Contains(string(status), fmt.Sprintf("\nUid:\t%d\t", uid)) || !strings.Contains(string(status), "\nCapEff:\t0000000000000000\n") || !rootRO {
		t.Fatalf("the replica is not restricted (root read-only %v):\n%s", rootRO, status)
	}
	must(t, d, "delete", "app", "hardened")
}

func writeApp(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPolicyBadFile: a policy file that does not compile stops the daemon
// with the file's line and the rule.
func TestPolicyBadFile(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(rules, []byte("- name: ok\n  match: app\n  expression: 'true'\n  message: m\n- name: broken\n  match: container\n  expression: object.config.image.startsWith(\n  message: m\n"), 0o644)
	d, err := startDaemonWith("policy-bad", "--policy", rules)
	if err == nil {
		extraDaemons = append(extraDaemons, d)
		t.Fatal("the daemon started with a policy file that does not compile")
	}
	for _, want := range []string{"bad.yaml line 5", `rule "broken"`, "expression does not compile"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("daemon error does not mention %q: %v", want, err)
		}
	}
}

// TestPolicyCheck: skiff policy check runs offline, with exit status 0
// (allowed), 1 (refused) and 2 (bad input).
func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(policyRules), 0o644)
	good := writeApp(t, helloApp("good", "1", "  resources: {cpu: 500m, memory: 64Mi}\n"))
	restricted := writeApp(t, helloApp("tight", "1", "  resources: {cpu: 500m, memory: 64Mi}\n  security: {profile: restricted}\n"))
	remote := writeApp(t, strings.Replace(helloApp("remote", "1", ""), "image: hello", "image: quay.io/x/hello", 1))
	bad := writeApp(t, "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: Bad_Name}\nspec: {image: hello}\n")
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"allowed", []string{"-f", good, "--policy", rules}, 0, []string{"App good allowed (profile baseline)"}},
		{"restricted App", []string{"-f", restricted}, 1, []string{"rule restricted/run-as-non-root", "spec.security", "1 of 1 Apps refused"}},
		{"restricted daemon", []string{"-f", good, "--profile", "restricted"}, 1, []string{"rule restricted/capabilities"}},
		{"custom rule", []string{"-f", remote, "--policy", rules}, 1, []string{"rule app-trusted-registry", "spec.image", "fix: build the image locally"}},
		{"no rules, no refusal", []string{"-f", remote}, 0, []string{"App remote allowed"}},
		{"bad manifest", []string{"-f", bad}, 2, []string{"metadata.name"}},
		{"bad profile", []string{"-f", good, "--profile", "strict"}, 2, []string{"use privileged, baseline or restricted"}},
		{"bad rules", []string{"-f", good, "--policy", good}, 2, []string{"want a list of rules"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No daemon: the socket does not exist.
			cmd := exec.Command(env.skiff, append([]string{"--socket", filepath.Join(dir, "none.sock"), "policy", "check"}, tt.args...)...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			for _, w := range tt.wants {
				if !strings.Contains(string(out), w) {
					t.Fatalf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}
