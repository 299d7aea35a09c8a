package compose

import (
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// locate returns "FILE:LINE" of services.SERVICE.KEY in the last of p's
// files that sets it (the one whose value won the merge), or of the
// service, or the first file's name when neither is found (a service
// from an include or extends).
func locate(p *types.Project, service, key string) string {
	where := ""
	if len(p.ComposeFiles) > 0 {
		where = p.ComposeFiles[0]
	}
	for _, f := range p.ComposeFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
			continue
		}
		svc := YAMLValue(YAMLValue(doc.Content[0], "services"), service)
		if svc == nil {
			continue
		}
		line := svc.Line
		if k := YAMLKey(svc, key); k != nil {
			line = k.Line
		}
		where = fmt.Sprintf("%s:%d", f, line)
	}
	return where
}

// YAMLValue is the value node of key in the YAML mapping m, or nil.
func YAMLValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// YAMLKey is the key node named key in the YAML mapping m, or nil.
func YAMLKey(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}
