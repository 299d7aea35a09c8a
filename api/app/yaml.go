package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api"
)

// YAML documents are read into a tree of values that keeps the line of
// every value and the order of every mapping, checked against the Go
// types (see decode.go), then written as JSON for encoding/json. yaml.v3
// parses; its Node API is used rather than decoding into structs because
// it gives lines, keeps duplicate keys visible and lets every problem in
// a document be reported at once.

// Limits on one YAML document, so that hostile input costs little.
const (
	// maxValues bounds the values of one document after aliases are
	// expanded (an App has a few hundred).
	maxValues = 100_000
	// maxDepth bounds nesting (an App nests seven deep).
	maxDepth = 64
)

// kind is the kind of a value.
type kind int

const (
	kindNull kind = iota
	kindString
	kindInt
	kindFloat
	kindBool
	kindMap
	kindSeq
)

func (k kind) String() string {
	return [...]string{"null", "a string", "an integer", "a number", "a boolean", "a mapping", "a list"}[k]
}

// value is one YAML value with its position.
type value struct {
	kind kind
	line int
	// text is a string's value, a number's JSON text, or "true"/"false".
	text string
	// src is a scalar as written, for messages.
	src    string
	fields []field  // kindMap, in document order
	items  []*value // kindSeq
}

// field is one key of a mapping.
type field struct {
	name  string
	line  int
	value *value
}

// get returns the value of the key name, or nil.
func (v *value) get(name string) *value {
	if v == nil || v.kind != kindMap {
		return nil
	}
	for _, f := range v.fields {
		if f.name == name {
			return f.value
		}
	}
	return nil
}

// describe says what v is for error messages: `a string ("80")`.
func (v *value) describe() string {
	switch v.kind {
	case kindString:
		s := v.text
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return fmt.Sprintf("a string (%q)", s)
	case kindInt, kindFloat, kindBool:
		return fmt.Sprintf("%s (%s)", v.kind, nonEmpty(v.src, v.text))
	}
	return v.kind.String()
}

// converter turns yaml.v3 nodes into values, collecting problems.
type converter struct {
	budget int
	errs   FieldErrors
}

func (c *converter) fail(line int, path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// convert converts n found at path; it returns nil after reporting a
// problem.
func (c *converter) convert(n *yaml.Node, path string, depth int) *value {
	c.budget--
	if c.budget < 0 {
		if c.budget == -1 {
			c.fail(n.Line, path, "document is too large after expanding aliases (more than %d values)", maxValues)
		}
		return nil
	}
	if depth > maxDepth {
		c.fail(n.Line, path, "nesting is deeper than %d levels", maxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &value{kind: kindNull, line: n.Line}
		}
		return c.convert(n.Content[0], path, depth)
	case yaml.AliasNode:
		if n.Alias == nil {
			c.fail(n.Line, path, "unknown alias")
			return nil
		}
		v := c.convert(n.Alias, path, depth+1)
		if v != nil {
			v = &value{kind: v.kind, line: n.Line, text: v.text, src: v.src, fields: v.fields, items: v.items}
		}
		return v
	case yaml.SequenceNode:
		v := &value{kind: kindSeq, line: n.Line, items: make([]*value, 0, len(n.Content))}
		for i, item := range n.Content {
			iv := c.convert(item, index(path, i), depth+1)
			if iv == nil {
				iv = &value{kind: kindNull, line: item.Line}
			}
			v.items = append(v.items, iv)
		}
		return v
	case yaml.MappingNode:
		return c.mapping(n, path, depth)
	case yaml.ScalarNode:
		return c.scalar(n, path)
	}
	c.fail(n.Line, path, "unsupported YAML node")
	return nil
}

func (c *converter) mapping(n *yaml.Node, path string, depth int) *value {
	v := &value{kind: kindMap, line: n.Line}
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			c.fail(k.Line, path, "mapping keys must be strings, got %s", nodeKind(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		name := k.Value
		fp := child(path, name)
		if first, dup := seen[name]; dup {
			c.fail(k.Line, fp, "duplicate key (first at line %d)", first)
			continue
		}
		seen[name] = k.Line
		fv := c.convert(val, fp, depth+1)
		if fv == nil {
			fv = &value{kind: kindNull, line: val.Line}
		}
		v.fields = append(v.fields, field{name: name, line: k.Line, value: fv})
	}
	// Merge keys ("<<: *base") add the keys the mapping does not set
	// itself, the first source winning.
	for _, m := range merges {
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, src := range sources {
			sv := c.convert(src, path, depth+1)
			if sv == nil {
				continue
			}
			if sv.kind != kindMap {
				c.fail(src.Line, path, "a merge key (<<) must name a mapping, got %s", sv.kind)
				continue
			}
			for _, f := range sv.fields {
				if _, set := seen[f.name]; !set {
					seen[f.name] = f.line
					v.fields = append(v.fields, f)
				}
			}
		}
	}
	return v
}

func (c *converter) scalar(n *yaml.Node, path string) *value {
	v := &value{line: n.Line, src: n.Value}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		v.kind, v.text = kindString, n.Value
	case "!!null":
		v.kind = kindNull
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.fail(n.Line, path, "malformed boolean %q", n.Value)
			return nil
		}
		v.kind, v.text = kindBool, strconv.FormatBool(b)
	case "!!int":
		var x any
		if err := n.Decode(&x); err != nil {
			c.fail(n.Line, path, "malformed integer %q", n.Value)
			return nil
		}
		switch x := x.(type) {
		case int:
			v.text = strconv.Itoa(x)
		case int64:
			v.text = strconv.FormatInt(x, 10)
		case uint64:
			v.text = strconv.FormatUint(x, 10)
		case float64: // an integer too large for int64
			return c.float(n, path, x)
		default:
			c.fail(n.Line, path, "malformed integer %q", n.Value)
			return nil
		}
		v.kind = kindInt
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			c.fail(n.Line, path, "malformed number %q", n.Value)
			return nil
		}
		return c.float(n, path, f)
	default:
		c.fail(n.Line, path, "unsupported YAML tag %s: write a plain string, number or boolean", tag)
		return nil
	}
	return v
}

func (c *converter) float(n *yaml.Node, path string, f float64) *value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		c.fail(n.Line, path, "must be a finite number, got %s", n.Value)
		return nil
	}
	return &value{kind: kindFloat, line: n.Line, text: strconv.FormatFloat(f, 'g', -1, 64), src: n.Value}
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a " + n.ShortTag()
}

// writeJSON writes v as JSON.
func (v *value) writeJSON(b *bytes.Buffer) {
	switch v.kind {
	case kindNull:
		b.WriteString("null")
	case kindString:
		s, _ := json.Marshal(v.text) // a string always marshals
		b.Write(s)
	case kindInt, kindFloat, kindBool:
		b.WriteString(v.text)
	case kindSeq:
		b.WriteByte('[')
		for i, item := range v.items {
			if i > 0 {
				b.WriteByte(',')
			}
			item.writeJSON(b)
		}
		b.WriteByte(']')
	case kindMap:
		b.WriteByte('{')
		for i, f := range v.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(f.name)
			b.Write(k)
			b.WriteByte(':')
			f.value.writeJSON(b)
		}
		b.WriteByte('}')
	}
}

// lineOf returns the line of the value at path, or of its nearest
// ancestor present in the document; 0 when root is nil.
func (v *value) lineOf(path string) int {
	if v == nil {
		return 0
	}
	line := v.line
	cur := v
	for path != "" && cur != nil {
		var seg string
		var isIndex bool
		switch path[0] {
		case '.':
			path = path[1:]
			continue
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return line
			}
			seg, path = path[1:end], path[end+1:]
			isIndex = true
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			seg, path = path[:end], path[end:]
		}
		var next *value
		var nextLine int
		if isIndex && cur.kind == kindSeq {
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(cur.items) {
				next, nextLine = cur.items[i], cur.items[i].line
			}
		} else if cur.kind == kindMap {
			for _, f := range cur.fields {
				if f.name == seg {
					next, nextLine = f.value, f.line
					break
				}
			}
		}
		if next == nil {
			return line
		}
		cur, line = next, nextLine
	}
	return line
}

// MarshalYAML writes app as YAML, fields in the order of the Go types
// (apiVersion, kind, metadata, spec, status), with the same omissions as
// its JSON form. Decode reads the result back to the same App.
func MarshalYAML(app api.App) ([]byte, error) {
	j, err := json.Marshal(app)
	if err != nil {
		return nil, fmt.Errorf("marshal app %s: %w", app.Metadata.Name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	n, err := jsonToNode(dec)
	if err != nil {
		return nil, fmt.Errorf("marshal app %s: %w", app.Metadata.Name, err)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("marshal app %s: %w", app.Metadata.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal app %s: %w", app.Metadata.Name, err)
	}
	return out.Bytes(), nil
}

// jsonToNode reads one JSON value from dec as a yaml.Node, keeping the
// order of object keys.
func jsonToNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		var n *yaml.Node
		if t == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		} else {
			n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				ks, _ := k.(string)
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ks})
			}
			item, err := jsonToNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, item)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t, Style: stringStyle(t)}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(t.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// stringStyle writes multi-line strings as literal blocks when a block
// keeps them exactly (printable text, no tabs, no spaces at line ends or
// at the start), and double-quoted otherwise; yaml.v3 picks for the rest.
func stringStyle(s string) yaml.Style {
	if !strings.Contains(s, "\n") {
		return 0
	}
	if strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n") {
		return yaml.DoubleQuotedStyle
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.HasSuffix(line, " ") {
			return yaml.DoubleQuotedStyle
		}
		for _, r := range line {
			if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff {
				return yaml.DoubleQuotedStyle
			}
		}
	}
	return yaml.LiteralStyle
}

// readAll reads at most limit bytes from r.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
