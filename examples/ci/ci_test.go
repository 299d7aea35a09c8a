// Package ci holds sample CI workflows that build an image, push it to
// skiff's registry and deploy it with a deployer token; its tests check
// their syntax.
package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// actionlint is the linter of GitHub Actions workflows, run from the Go
// module proxy.
const actionlint = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

func runActionlint(t *testing.T, file string) (string, error) {
	cmd := exec.Command("go", "run", actionlint, "-no-color", "-shellcheck=", "-pyflakes=", file)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestGitHubActionsWorkflow(t *testing.T) {
	if out, err := runActionlint(t, "github-actions.yml"); err != nil {
		t.Fatalf("actionlint github-actions.yml: %v\n%s", err, out)
	}
	// The check can fail: a workflow with an unknown key and a bad
	// expression is refused.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n    steps:\n      - run: echo ${{ github.nope( }}\n"), 0o644)
	out, err := runActionlint(t, bad)
	if err == nil || !strings.Contains(out, "stepz") {
		t.Fatalf("actionlint accepted a broken workflow: %v\n%s", err, out)
	}
}

// TestAzurePipeline checks the pipeline's shape: its YAML parses and
// every step is a script, a task or a checkout with the keys Azure
// Pipelines knows.
func TestAzurePipeline(t *testing.T) {
	b, err := os.ReadFile("azure-pipelines.yml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Trigger   map[string]any    `yaml:"trigger"`
		Pool      map[string]string `yaml:"pool"`
		Variables map[string]string `yaml:"variables"`
		Steps     []map[string]any  `yaml:"steps"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("azure-pipelines.yml: %v", err)
	}
	if p.Pool["vmImage"] == "" || len(p.Steps) == 0 || p.Trigger == nil {
		t.Fatal("azure-pipelines.yml needs trigger, pool.vmImage and steps")
	}
	known := map[string]bool{"script": true, "task": true, "checkout": true, "inputs": true, "displayName": true, "env": true}
	deploys := false
	for i, s := range p.Steps {
		kinds := 0
		for k, v := range s {
			if !known[k] {
				t.Errorf("step %d: unknown key %q", i+1, k)
			}
			if k == "script" || k == "task" || k == "checkout" {
				kinds++
			}
			if k == "script" && strings.Contains(v.(string), "apply -f") && strings.Contains(v.(string), "--wait") {
				deploys = true
			}
		}
		if kinds != 1 {
			t.Errorf("step %d must be one of script, task and checkout", i+1)
		}
	}
	if !deploys {
		t.Error("no step deploys with skiff apply --wait")
	}
}
