package kube

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api/app"
)

// addSeeds adds the testdata inputs and the golden exports as seeds.
func addSeeds(f *testing.F, aca bool) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		if strings.HasPrefix(filepath.Base(p), "aca") != aca {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzImport: any input either fails with an error or gives valid Apps;
// it never panics.
func FuzzImport(f *testing.F) {
	addSeeds(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeManifests(bytes.NewReader(data))
		if err != nil {
			return
		}
		apps, _, err := Import(objs)
		if err != nil {
			return
		}
		for _, a := range apps {
			if err := app.Validate(a).Err(); err != nil {
				t.Fatalf("Import returned an invalid App: %v", err)
			}
		}
	})
}

// FuzzImportACA: the same for Azure Container Apps documents.
func FuzzImportACA(f *testing.F) {
	addSeeds(f, true)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _, err := ImportACA(data)
		if err != nil {
			return
		}
		if err := app.Validate(a).Err(); err != nil {
			t.Fatalf("ImportACA returned an invalid App: %v", err)
		}
	})
}
