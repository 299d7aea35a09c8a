package gitops

import (
	"fmt"
	"path"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/api/policy"
)

// isPolicyFile reports whether name is a policy file of a source:
// policy.yaml, policy.yml, or a name ending in .policy.yaml or
// .policy.yml.
func isPolicyFile(name string) bool {
	base := strings.ToLower(path.Base(name))
	return base == "policy.yaml" || base == "policy.yml" ||
		strings.HasSuffix(base, ".policy.yaml") || strings.HasSuffix(base, ".policy.yml")
}

// sourcePolicy is the compiled rules of one policy file of a commit.
type sourcePolicy struct {
	file  string
	rules *policy.Rules
}

// loadPolicies compiles the policy files of a commit; the first bad one
// fails, naming its file, line and rule.
func loadPolicies(files []app.File) ([]sourcePolicy, error) {
	var out []sourcePolicy
	for _, f := range files {
		r, err := policy.ParseRules(f.Name, f.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: nothing was applied", err)
		}
		out = append(out, sourcePolicy{file: f.Name, rules: r})
	}
	return out, nil
}

// checkPolicies checks every App against the app rules of every policy
// file, as skiff policy check --policy FILE does. The error lists each
// violation with the App, the policy file, the rule and the field.
func checkPolicies(pols []sourcePolicy, apps []api.App) error {
	var problems []string
	for _, a := range apps {
		for _, p := range pols {
			for _, v := range p.rules.CheckApp(a) {
				problems = append(problems, fmt.Sprintf("app %s: refused by the policy file %s: %s", a.Metadata.Name, p.file, v))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errdefs.Invalid("%s: nothing was applied", strings.Join(problems, "; "))
}
