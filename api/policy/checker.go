package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Violation is one reason an object is refused.
type Violation struct {
	// Rule is the built-in rule ("baseline/privileged") or the custom
	// rule's name.
	Rule string `json:"rule"`
	// Field is the path of the offending field ("config.privileged").
	Field   string `json:"field"`
	Message string `json:"message"`
	// Fix says how to comply.
	Fix string `json:"fix,omitempty"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("rule %s: %s: %s", v.Rule, v.Field, v.Message)
	if v.Fix != "" {
		s += "; fix: " + v.Fix
	}
	return s
}

// Refusal is the error of a refused object: every violation found.
type Refusal struct {
	// Object names what was refused ("container web", "App shop").
	Object     string
	Violations []Violation
}

func (r *Refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s refused by the admission policy:", r.Object)
	for _, v := range r.Violations {
		b.WriteString("\n  " + v.String())
	}
	return b.String()
}

// Checker checks objects against a profile and custom rules. Its zero
// value checks nothing but the default profile.
type Checker struct {
	// Profile is the daemon's profile ("" is DefaultProfile).
	Profile Profile
	// HostPaths are the host directories bind mounts may come from.
	HostPaths []string
	// Rules are the custom rules (nil for none).
	Rules *Rules
}

func (c *Checker) profile() Profile {
	if c.Profile == "" {
		return DefaultProfile
	}
	return c.Profile
}

// CheckContainer returns every violation of req, nil if it is allowed.
func (c *Checker) CheckContainer(req api.ContainerCreateRequest) []Violation {
	out := checkContainerProfile(c.profile(), req.Config, c.HostPaths)
	if c.Rules.Len() > 0 {
		obj, err := toMap(req)
		if err != nil {
			return append(out, Violation{Rule: "policy", Field: "object", Message: err.Error()})
		}
		out = append(out, c.Rules.check(MatchContainer, obj)...)
	}
	return out
}

// Container returns a *Refusal (errdefs.ErrInvalid) if req is refused.
func (c *Checker) Container(req api.ContainerCreateRequest) error {
	name := "container"
	if req.Name != "" {
		name += " " + req.Name
	}
	return refuse(name, c.CheckContainer(req))
}

// AppProfile returns the profile a is checked against: its own if set,
// else the daemon's.
func (c *Checker) AppProfile(a api.App) Profile {
	if p, err := ParseProfile(a.Spec.Security.Profile); err == nil && a.Spec.Security.Profile != "" {
		return p
	}
	return c.profile()
}

// CheckApp returns every violation of a, nil if it is allowed. An App
// may choose a profile stricter than the daemon's, never a looser one.
func (c *Checker) CheckApp(a api.App) []Violation {
	var out []Violation
	p := c.AppProfile(a)
	if !p.StricterOrEqual(c.profile()) {
		out = append(out, Violation{Rule: "profile", Field: "spec.security.profile",
			Message: fmt.Sprintf("profile %s is looser than the daemon's (%s)", p, c.profile()),
			Fix:     fmt.Sprintf("use %s or a stricter profile, or run the daemon with --security-profile %s", c.profile(), p)})
	}
	out = append(out, checkAppProfile(p, a)...)
	return append(out, c.Rules.CheckApp(a)...)
}

// CheckApp returns the violations of a against the rules that match Apps,
// and no profile's: what a policy file adds to the profile checks. A nil
// r has no rules.
func (r *Rules) CheckApp(a api.App) []Violation {
	if r.Len() == 0 {
		return nil
	}
	obj, err := toMap(api.App{APIVersion: a.APIVersion, Kind: a.Kind, Metadata: a.Metadata, Spec: a.Spec})
	if err != nil {
		return []Violation{{Rule: "policy", Field: "object", Message: err.Error()}}
	}
	return r.check(MatchApp, obj)
}

// App returns a *Refusal (errdefs.ErrInvalid) if a is refused.
func (c *Checker) App(a api.App) error {
	return refuse("App "+a.Metadata.Name, c.CheckApp(a))
}

func refuse(object string, vs []Violation) error {
	if len(vs) == 0 {
		return nil
	}
	return errdefs.WithCategory(errdefs.ErrInvalid, &Refusal{Object: object, Violations: vs})
}

// toMap returns v's JSON form as CEL sees it.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoObject, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoObject, err)
	}
	return m, nil
}
