package compose

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api/app"
)

// TestAppFor converts the marked service of testdata/convert, compares
// the App YAML with the golden file and checks that skiff apply would
// accept it.
func TestAppFor(t *testing.T) {
	abs, _ := filepath.Abs("testdata/convert")
	p, err := Load(context.Background(), LoadOptions{WorkDir: abs})
	if err != nil {
		t.Fatal(err)
	}
	names, err := AppServices(p, false)
	if err != nil || len(names) != 1 || names[0] != "web" {
		t.Fatalf("app services %v, %v; want [web]", names, err)
	}
	a, err := AppFor(p, p.Services["web"])
	if err != nil {
		t.Fatal(err)
	}
	got, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.WriteFile("testdata/convert.golden", got, 0o644)
	}
	want, err := os.ReadFile("testdata/convert.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("App differs from testdata/convert.golden:\n%s", got)
	}
	if _, err := app.Load(bytes.NewReader(got)); err != nil {
		t.Errorf("the App is not valid: %v", err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("x-skiff or other keys reported unsupported: %v", issues)
	}
	if all, _ := AppServices(p, true); len(all) != 2 {
		t.Errorf("--apps converts %v, want both services", all)
	}
}
