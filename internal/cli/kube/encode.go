package kube

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// ToMaps returns objs as the maps their JSON forms decode to, without the
// fields an API server writes (status, metadata.creationTimestamp): what
// a manifest holds.
func ToMaps(objs []runtime.Object) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("convert %T: %w", o, err)
		}
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		if spec, ok := m["spec"].(map[string]any); ok {
			if t, ok := spec["template"].(map[string]any); ok {
				if md, ok := t["metadata"].(map[string]any); ok {
					delete(md, "creationTimestamp")
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// EncodeYAML writes objs as a YAML stream, one document per object.
func EncodeYAML(objs []runtime.Object) ([]byte, error) {
	maps, err := ToMaps(objs)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for i, m := range maps {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// EncodeJSON writes objs as a v1 List, as kubectl prints several objects.
func EncodeJSON(objs []runtime.Object) ([]byte, error) {
	maps, err := ToMaps(objs)
	if err != nil {
		return nil, err
	}
	items := make([]any, len(maps))
	for i, m := range maps {
		items[i] = m
	}
	b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
