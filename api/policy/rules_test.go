package policy

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

const registryRules = `
# Images only from the company registry.
- name: trusted-registry
  match: container
  expression: object.config.image.startsWith("registry.example/")
  message: images must come from registry.example
  fix: push the image to registry.example and use that reference
  field: config.image
- name: app-registry
  match: app
  expression: object.spec.image.startsWith("registry.example/")
  message: App images must come from registry.example
  fix: push the image to registry.example
  field: spec.image
- name: team-label
  match: app
  expression: has(object.metadata.labels) && "team" in object.metadata.labels
  message: every App needs a team label
  fix: 'add metadata.labels.team'
`

func TestRules(t *testing.T) {
	rules, err := ParseRules("rules.yaml", []byte(registryRules))
	if err != nil {
		t.Fatal(err)
	}
	if rules.Len() != 3 {
		t.Fatalf("Len = %d", rules.Len())
	}
	c := &Checker{Profile: Privileged, Rules: rules}
	ctr := func(image string) api.ContainerCreateRequest {
		return api.ContainerCreateRequest{Config: api.ContainerConfig{Image: image}}
	}
	checkViolations(t, c.CheckContainer(ctr("registry.example/web:1")), nil)
	checkViolations(t, c.CheckContainer(ctr("docker.io/library/nginx")), []string{"trusted-registry|config.image|push the image"})
	err = c.Container(ctr("evil.example/x"))
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "images must come from registry.example") {
		t.Fatalf("Container: %v", err)
	}

	a := app("", api.AppResources{})
	checkViolations(t, c.CheckApp(a), []string{"team-label|object|metadata.labels.team"})
	a.Metadata.Labels = map[string]string{"team": "shop"}
	checkViolations(t, c.CheckApp(a), nil)
	a.Spec.Image = "quay.io/x"
	checkViolations(t, c.CheckApp(a), []string{"app-registry|spec.image|push the image"})
}

func TestRuleEvaluationError(t *testing.T) {
	rules, err := ParseRules("r.yaml", []byte(`- {name: mem, match: app, expression: 'object.spec.resources.memory != ""', message: memory needed, fix: set it}`))
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Rules: rules}
	got := c.CheckApp(app("", api.AppResources{}))
	if len(got) != 1 || got[0].Rule != "mem" || !strings.Contains(got[0].Message, "could not be evaluated") || !strings.Contains(got[0].Fix, "has()") {
		t.Fatalf("violations %+v: want an evaluation error refused", got)
	}
	checkViolations(t, c.CheckApp(app("", api.AppResources{Memory: "1Gi"})), nil)
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"missing expression", "- name: a\n  match: app\n  message: m\n- name: b\n  match: app\n  expression: object.spec.image.startsWith(\n  message: m\n",
			"r.yaml line 1: rule \"a\": expression is required"},
		{"syntax error with line", "- name: ok\n  match: app\n  expression: 'true'\n  message: m\n- name: broken\n  match: app\n  expression: object.spec.image.startsWith(\n  message: m\n",
			"r.yaml line 5: rule \"broken\": expression does not compile"},
		{"not bool", "- name: n\n  match: container\n  expression: '1 + 2'\n  message: m\n", "line 1: rule \"n\": expression must return a bool"},
		{"undeclared", "- name: u\n  match: app\n  expression: app.spec.image == 'x'\n  message: m\n", "undeclared reference"},
		{"bad match", "- name: m\n  match: pod\n  expression: 'true'\n  message: m\n", "match must be app or container"},
		{"unknown field", "- name: m\n  match: app\n  expresion: 'true'\n", "field expresion not found"},
		{"duplicate", "- {name: a, match: app, expression: 'true', message: m}\n- {name: a, match: app, expression: 'true', message: m}\n", "line 2: rule \"a\": the name is used twice"},
		{"no message", "- {name: a, match: app, expression: 'true'}\n", "message is required"},
		{"not a list", "name: a\n", "line 1: want a list of rules"},
		{"bad yaml", "- [\n", "policy file r.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules("r.yaml", []byte(tt.in))
			if err == nil || !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseRules: %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParseRules checks that any policy file either parses into rules that
// evaluate without panicking, or is refused with ErrInvalid.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(registryRules))
	f.Add([]byte("- {name: a, match: app, expression: 'object.spec.x.y[0] > 1', message: m}"))
	f.Add([]byte("- name: a\n  match: container\n  expression: object.config.mounts.all(m, m.type == 'volume')\n  message: m\n"))
	f.Add([]byte("[]"))
	f.Add([]byte("- &a {name: a}\n- *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.HasPrefix(err.Error(), "policy file fuzz.yaml") {
				t.Fatalf("error %v: want ErrInvalid naming the file", err)
			}
			return
		}
		c := &Checker{Rules: rules}
		c.CheckApp(app("", api.AppResources{}))
		c.CheckContainer(api.ContainerCreateRequest{Config: restrictedOK()})
	})
}
