package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api/errdefs"
)

// What a rule applies to.
const (
	MatchApp       = "app"
	MatchContainer = "container"
)

// maxRuleCost bounds the work of one rule's evaluation (CEL cost units).
const maxRuleCost = 1_000_000

// Rule is one custom rule of a policy file. Expression is CEL over
// `object`, the App (object.metadata, object.spec) or the container
// create request (object.name, object.config) as their JSON forms; it
// must return true for an object that is allowed, as a Kubernetes
// ValidatingAdmissionPolicy validation does.
type Rule struct {
	Name       string `yaml:"name"`
	Match      string `yaml:"match"`
	Expression string `yaml:"expression"`
	// Message says what is wrong when Expression is false.
	Message string `yaml:"message"`
	// Fix says how to comply.
	Fix string `yaml:"fix"`
	// Field is the field path named in refusals (default "object").
	Field string `yaml:"field"`

	line int
	prg  cel.Program
}

// Rules is a compiled policy file.
type Rules struct {
	rules []*Rule
}

// Len returns the number of rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rules)
}

// ParseRules reads and compiles a policy file: a YAML list of rules. Every
// rule needs a unique name, match (app or container), an expression that
// compiles to a boolean, and a message. The first problem is returned,
// naming file, line and rule; the error is errdefs.ErrInvalid.
func ParseRules(file string, data []byte) (*Rules, error) {
	fail := func(line int, format string, args ...any) (*Rules, error) {
		return nil, errdefs.Invalid("policy file %s line %d: %s", file, line, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errdefs.Invalid("policy file %s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return &Rules{}, nil
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return fail(list.Line, "want a list of rules ({name, match, expression, message, fix})")
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	out := &Rules{}
	seen := map[string]bool{}
	for _, n := range list.Content {
		r := &Rule{line: n.Line}
		dec := yaml.NewDecoder(bytes.NewReader(mustMarshal(n)))
		dec.KnownFields(true)
		if n.Kind != yaml.MappingNode {
			return fail(n.Line, "a rule is a mapping with name, match, expression, message and fix")
		}
		if err := dec.Decode(r); err != nil {
			return fail(n.Line, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		switch {
		case r.Name == "":
			return fail(n.Line, "a rule needs a name")
		case seen[r.Name]:
			return fail(n.Line, "rule %q: the name is used twice", r.Name)
		case r.Match != MatchApp && r.Match != MatchContainer:
			return fail(n.Line, "rule %q: match must be app or container", r.Name)
		case strings.TrimSpace(r.Expression) == "":
			return fail(n.Line, "rule %q: expression is required", r.Name)
		case r.Message == "":
			return fail(n.Line, "rule %q: message is required (what is wrong when the expression is false)", r.Name)
		}
		seen[r.Name] = true
		if r.prg, err = compile(env, r.Expression); err != nil {
			return fail(n.Line, "rule %q: %v", r.Name, err)
		}
		if r.Field == "" {
			r.Field = "object"
		}
		out.rules = append(out.rules, r)
	}
	return out, nil
}

func mustMarshal(n *yaml.Node) []byte {
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil
	}
	return b
}

// celEnv is the environment every rule compiles in: one variable,
// object. Made once (it declares CEL's whole standard library); a cel.Env
// is safe for concurrent use.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("object", cel.MapType(cel.StringType, cel.DynType)))
})

// compile checks expr and makes its program.
func compile(env *cel.Env, expr string) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("expression does not compile:\n%v", iss.Err())
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("expression must return a bool, not %v", t)
	}
	return env.Program(ast, cel.CostLimit(maxRuleCost), cel.InterruptCheckFrequency(100))
}

// check runs the rules matching kind over obj.
func (r *Rules) check(kind string, obj map[string]any) []Violation {
	if r == nil {
		return nil
	}
	var out []Violation
	for _, rule := range r.rules {
		if rule.Match != kind {
			continue
		}
		v := Violation{Rule: rule.Name, Field: rule.Field, Message: rule.Message, Fix: rule.Fix}
		res, _, err := rule.prg.Eval(map[string]any{"object": obj})
		if err != nil {
			v.Message = "the rule could not be evaluated: " + err.Error()
			v.Fix = "fix the object, or guard the rule's expression with has() for optional fields"
			out = append(out, v)
			continue
		}
		if ok, isBool := res.Value().(bool); !isBool || !ok {
			if !isBool {
				v.Message = fmt.Sprintf("the rule returned %v, not a bool", res.Value())
			}
			out = append(out, v)
		}
	}
	return out
}

var errNoObject = errors.New("object has no JSON form")
