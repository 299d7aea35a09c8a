package schema

import (
	"encoding/json"
	"testing"
)

func TestAppJSON(t *testing.T) {
	var s struct {
		Schema     string         `json:"$schema"`
		ID         string         `json:"$id"`
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	if err := json.Unmarshal(AppJSON, &s); err != nil {
		t.Fatalf("app.schema.json is not JSON: %v", err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.ID == "" {
		t.Errorf("$schema = %q, $id = %q", s.Schema, s.ID)
	}
	for _, f := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if _, ok := s.Properties[f]; !ok {
			t.Errorf("no property %s", f)
		}
	}
	if len(s.Required) != 4 {
		t.Errorf("required = %v", s.Required)
	}
}
