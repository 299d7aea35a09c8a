package e2e

import (
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestGitopsComposeAndPolicy follows a repository holding a compose
// project and a policy file: a commit whose compose App breaks the
// policy fails the sync naming the rule, file and field and applies
// nothing; the fixed commit makes the service marked x-skiff an App owned
// by the source; a bad compose file fails naming its line.
func TestGitopsComposeAndPolicy(t *testing.T) {
	d := env.daemon
	root := t.TempDir()
	repo := newGitRepo(t, root, "deploy")
	const policy = `- name: memory-limit
  match: app
  expression: has(object.spec.resources) && has(object.spec.resources.memory)
  message: every App needs a memory limit
  fix: set spec.resources.memory (mem_limit in compose)
  field: spec.resources.memory
`
	compose := func(limits string) string {
		return "services:\n  web:\n    image: hello\n    ports: [\"8080\"]\n" + limits + "    x-skiff: {app: true, scale: {min: 0}}\n  cache:\n    image: hello\n"
	}
	repo.commit("shop without a memory limit", map[string]string{
		"deploy/policy.yaml":       policy,
		"deploy/shop/compose.yaml": compose(""),
		"deploy/api.yaml":          "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: gc-api}\nspec: {image: hello, resources: {memory: 64Mi}, scale: {min: 0}}\n",
	})
	t.Cleanup(func() {
		d.Run("", "source", "rm", "gc")
		d.Run("", "delete", "app", "shop-web")
		d.Run("", "delete", "app", "gc-api")
	})
	r := d.Run("", "source", "add", "gc", "--git", "file://"+repo.dir, "--path", "deploy", "--interval", "1h")
	for _, w := range []string{"app shop-web: refused by the policy file deploy/policy.yaml: rule memory-limit: spec.resources.memory: every App needs a memory limit", "nothing was applied"} {
		if r.Code == 0 || !strings.Contains(r.Stderr, w) {
			t.Fatalf("a commit the policy refuses: want %q: %s", w, r)
		}
	}
	for _, a := range []string{"shop-web", "gc-api"} {
		if d.Run("", "get", "apps", a).Code == 0 {
			t.Fatalf("%s was applied by a refused commit", a)
		}
	}
	c2 := repo.commit("memory limit", map[string]string{"deploy/shop/compose.yaml": compose("    mem_limit: 64m\n")})
	out := must(t, d, "source", "sync", "gc")
	for _, w := range []string{"app/shop-web created", "app/gc-api created", "source/gc at " + c2[:12] + ": Applied"} {
		if !strings.Contains(out, w) {
			t.Fatalf("sync does not say %q:\n%s", w, out)
		}
	}
	a := getApp(t, d, "shop-web")
	if a.Metadata.Annotations[api.AnnotationSource] != "gc" || a.Spec.Port != 8080 || a.Spec.Resources.Memory == "" {
		t.Fatalf("shop-web: source %q port %d memory %q", a.Metadata.Annotations[api.AnnotationSource], a.Spec.Port, a.Spec.Resources.Memory)
	}
	if d.Run("", "get", "apps", "shop-cache").Code == 0 {
		t.Fatal("a compose service not marked x-skiff app became an App")
	}

	repo.commit("bad compose", map[string]string{"deploy/shop/compose.yaml": compose("    mem_limit: 64m\n") + "    replicas: 2\n"})
	fails(t, d, []string{"deploy/shop/compose.yaml: line 9", "replicas", "nothing was applied"}, "source", "sync", "gc")
	if s := getSource(t, d, "gc"); s.Status.Commit != c2 {
		t.Fatalf("a bad compose file moved the source to %s, want %s", s.Status.Commit, c2)
	}
}
