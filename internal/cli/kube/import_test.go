package kube

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// renderApps is an import as a golden file holds it: the warnings as
// comments, then the Apps' YAML.
func renderApps(t *testing.T, apps []api.App, warns []Warning) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, w := range warns {
		b.WriteString("# warning: " + w.String() + "\n")
	}
	for i, a := range apps {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := app.MarshalYAML(a)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(y)
	}
	return b.Bytes()
}

// TestImportGolden imports the manifests in testdata/import (ACA ones
// are named aca*.yaml) and compares with the golden files.
func TestImportGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/import/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.Contains(in, ".golden.") {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var apps []api.App
			var warns []Warning
			if strings.HasPrefix(filepath.Base(in), "aca") {
				a, w, err := ImportACA(data)
				if err != nil {
					t.Fatal(err)
				}
				apps, warns = []api.App{a}, w
			} else {
				objs, err := DecodeManifests(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				apps, warns, err = Import(objs)
				if err != nil {
					t.Fatal(err)
				}
			}
			checkGolden(t, strings.TrimSuffix(in, ".yaml")+".golden.yaml", renderApps(t, apps, warns))
		})
	}
	if n == 0 {
		t.Fatal("no inputs in testdata/import")
	}
}

func TestImportErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not kubernetes", "name: x\n", "apiVersion and kind are required"},
		{"nothing to import", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "no Deployment or Knative Service"},
		{"bad yaml", "apiVersion: v1\nkind: [\n", "document 1"},
		{"invalid result", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: Bad_Name}\nspec: {template: {spec: {containers: [{name: a, image: x}]}}}\n", "metadata.name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := DecodeManifests(strings.NewReader(tc.in))
			if err == nil {
				_, _, err = Import(objs)
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid-argument error with %q", err, tc.want)
			}
		})
	}
	if _, _, err := ImportACA([]byte("name: x\n")); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("ACA without properties: got %v", err)
	}
}
