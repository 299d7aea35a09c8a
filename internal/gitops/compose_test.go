package gitops

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// loadFiles commits files to a new repository and loads the commit under
// dir as a sync does.
func loadFiles(t *testing.T, dir string, files map[string]string) (Manifests, error) {
	t.Helper()
	repo := newTestRepo(t)
	h := repo.commit("c", files)
	c, err := repo.r.CommitObject(mustHash(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return LoadCommit(Checkout{Commit: c}, dir)
}

const shopCompose = `services:
  web:
    image: hello:1
    ports: ["8080"]
    environment: {MODE: "${MODE:-prod}"}
    x-skiff: {app: true}
  db:
    image: postgres:15
`

func appNames(apps []api.App) string {
	var n []string
	for _, a := range apps {
		n = append(n, a.Metadata.Name)
	}
	return strings.Join(n, ",")
}

func TestLoadCommitCompose(t *testing.T) {
	m, err := loadFiles(t, "deploy", map[string]string{
		"deploy/shop/compose.yaml":          shopCompose,
		"deploy/shop/compose.override.yaml": "services:\n  web:\n    image: hello:2\n",
		"deploy/blog/docker-compose.yml":    "name: journal\nservices:\n  site:\n    image: site:1\n    x-skiff: {app: true, port: 80}\n",
		"deploy/api.yaml":                   appYAML("api", "api:1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := appNames(m.Apps); got != "api,journal-site,shop-web" {
		t.Fatalf("apps %s, want api,journal-site,shop-web (the App documents', then the compose services marked x-skiff app)", got)
	}
	web := m.Apps[2]
	if web.Spec.Image != "hello:2" || web.Spec.Port != 8080 || envOf(web, "MODE") != "prod" {
		t.Fatalf("shop-web: image %s port %d MODE %q, want the override's hello:2, 8080, prod", web.Spec.Image, web.Spec.Port, envOf(web, "MODE"))
	}

	bad := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown key", map[string]string{"shop/compose.yaml": "services:\n  web:\n    image: a\n    replicas: 2\n    x-skiff: {app: true}\n"},
			[]string{"shop/compose.yaml: line 4", "services.web.replicas", "nothing was applied"}},
		{"yaml", map[string]string{"shop/compose.yaml": "services:\n  web: [\n"}, []string{"shop/compose.yaml", "line"}},
		{"env_file", map[string]string{"shop/compose.yaml": "services:\n  web:\n    image: a\n    env_file: /etc/shadow\n"},
			[]string{"shop/compose.yaml: line 4", "env_file", "cannot read other files"}},
		{"include", map[string]string{"shop/compose.yaml": "include: [/etc/other.yaml]\nservices: {}\n"}, []string{"line 1", "include"}},
		{"no name", map[string]string{"compose.yaml": shopCompose}, []string{"compose.yaml", "name: key"}},
		{"two files", map[string]string{"s/compose.yaml": shopCompose, "s/docker-compose.yml": shopCompose}, []string{"two compose files"}},
		{"twice", map[string]string{"shop/compose.yaml": shopCompose, "web.yaml": appYAML("shop-web", "x")}, []string{"shop-web is declared twice"}},
		{"bad app", map[string]string{"shop/compose.yaml": "services:\n  Web:\n    image: a\n    x-skiff: {app: true}\n"}, []string{"shop/compose.yaml", "service Web"}},
	}
	for _, tc := range bad {
		_, err := loadFiles(t, "", tc.files)
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.name, err, w)
			}
		}
	}
}

func envOf(a api.App, name string) string {
	for _, e := range a.Spec.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

const teamPolicy = `- name: team-label
  match: app
  expression: has(object.metadata.labels) && "team" in object.metadata.labels
  message: every App needs a team label
  fix: add metadata.labels.team
  field: metadata.labels
- name: no-host-containers
  match: container
  expression: "false"
  message: not checked for Apps
`

func TestLoadCommitPolicy(t *testing.T) {
	labelled := "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: ok, labels: {team: web}}\nspec: {image: a}\n"
	m, err := loadFiles(t, "", map[string]string{"policy.yaml": teamPolicy, "ok.yaml": labelled})
	if err != nil || appNames(m.Apps) != "ok" {
		t.Fatalf("an App the policy allows: %v, %v", appNames(m.Apps), err)
	}
	_, err = loadFiles(t, "", map[string]string{"rules/team.policy.yml": teamPolicy, "ok.yaml": labelled, "bad.yaml": appYAML("bad", "a"),
		"shop/compose.yaml": shopCompose})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Apps the policy refuses: %v, want invalid", err)
	}
	for _, w := range []string{"app bad: refused by the policy file rules/team.policy.yml: rule team-label: metadata.labels: every App needs a team label; fix: add metadata.labels.team",
		"app shop-web: refused", "nothing was applied"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "app ok") || strings.Contains(err.Error(), "no-host-containers") {
		t.Errorf("%q refuses the labelled App or checks a container rule", err)
	}
	_, err = loadFiles(t, "", map[string]string{"policy.yaml": "- name: x\n  match: app\n  expression: object.nope(\n  message: m\n", "ok.yaml": labelled})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "policy file policy.yaml line 1") {
		t.Fatalf("a bad policy file: %v", err)
	}
}
