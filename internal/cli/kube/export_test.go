package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli/kube -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./internal/cli/kube -update to accept):\n--- want\n%s\n--- got\n%s", golden, want, got)
	}
}

// readApps reads the Apps of a file, keeping their status (revisions
// named there).
func readApps(t *testing.T, path string) []api.App {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	apps, err := app.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

// readRevisions reads NAME.revisions.json beside an input, if any.
func readRevisions(t *testing.T, input string) map[string][]api.Revision {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(input, ".yaml") + ".revisions.json")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var revs []api.Revision
	if err := json.Unmarshal(b, &revs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]api.Revision{}
	for _, r := range revs {
		out[r.App] = append(out[r.App], r)
	}
	return out
}

// render is an export as a golden file holds it: the warnings as
// comments, then the YAML stream.
func render(t *testing.T, apps []api.App, opts Options) []byte {
	t.Helper()
	objs, warns, err := Export(apps, opts)
	if err != nil {
		t.Fatal(err)
	}
	y, err := EncodeYAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, w := range warns {
		b.WriteString("# warning: " + w.String() + "\n")
	}
	b.Write(y)
	return b.Bytes()
}

// TestExportGolden exports every App file in testdata/export in each
// flavor and compares with the golden files beside it.
func TestExportGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/export/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		suffix string
		opts   Options
	}{
		{"plain", Options{Flavor: Plain}},
		{"ingress", Options{Flavor: Plain, Ingress: true, Namespace: "shop", Domain: "apps.example.com"}},
		{"knative", Options{Flavor: Knative}},
	}
	n := 0
	for _, in := range inputs {
		if strings.Contains(in, ".golden.") {
			continue
		}
		n++
		apps := readApps(t, in)
		revs := readRevisions(t, in)
		for _, v := range variants {
			t.Run(filepath.Base(in)+"/"+v.suffix, func(t *testing.T) {
				opts := v.opts
				opts.Revisions = revs
				got := render(t, apps, opts)
				checkGolden(t, strings.TrimSuffix(in, ".yaml")+"."+v.suffix+".golden.yaml", got)
			})
		}
	}
	if n == 0 {
		t.Fatal("no inputs in testdata/export")
	}
}

func TestExportSecrets(t *testing.T) {
	apps := readApps(t, "testdata/export/full.yaml")
	_, _, err := Export(apps, Options{IncludeSecrets: true})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "secret db") {
		t.Fatalf("export without the secret's values: got %v, want a not-found error naming secret db", err)
	}
	got := render(t, apps, Options{IncludeSecrets: true, Secrets: map[string]map[string][]byte{"db": {"password": []byte("s3cret")}}})
	if !bytes.Contains(got, []byte("kind: Secret")) || !bytes.Contains(got, []byte("password: czNjcmV0")) {
		t.Fatalf("no Secret with the value in:\n%s", got)
	}
	if bytes.Contains(render(t, apps, Options{}), []byte("kind: Secret\n")) {
		t.Fatal("a Secret was exported without IncludeSecrets")
	}
}

func TestExportErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
		opts             Options
	}{
		{"unknown revision", "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: a}\nspec: {image: x, traffic: [{revision: a-00003, percent: 100}]}\n",
			"spec.traffic[0]: revision a-00003 is not known here", Options{}},
		{"bad flavor", "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: a}\nspec: {image: x}\n", `unknown flavor "helm"`, Options{Flavor: "helm"}},
		{"invalid app", "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: a}\nspec: {image: x, port: 70000}\n", "spec.port", Options{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			apps, err := app.Decode(strings.NewReader(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Export(apps, tc.opts)
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid-argument error with %q", err, tc.want)
			}
		})
	}
}

func TestExportSharedVolume(t *testing.T) {
	apps, err := app.Decode(strings.NewReader(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: a}
spec: {image: x, volumes: [{name: data, mountPath: /data}]}
---
apiVersion: skiff.dev/v1
kind: App
metadata: {name: b}
spec: {image: y, volumes: [{name: data, mountPath: /srv}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	objs, _, err := Export(apps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind == "PersistentVolumeClaim" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d PersistentVolumeClaims for one volume used by two Apps, want 1", n)
	}
}

func TestExportKnativeWarnings(t *testing.T) {
	apps, err := app.Decode(strings.NewReader(`apiVersion: skiff.dev/v1
kind: App
metadata: {name: a}
spec:
  image: x
  ingress: {timeout: 20m}
  security: {capabilities: {add: [SYS_PTRACE]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, warns, err := Export(apps, Options{Flavor: Knative})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, w := range warns {
		all = append(all, w.String())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{"spec.ingress.timeout: 20m is above Knative's default max-revision-timeout-seconds", "spec.security.capabilities.add: Knative allows adding only NET_BIND_SERVICE"} {
		if !strings.Contains(got, want) {
			t.Errorf("no warning %q in:\n%s", want, got)
		}
	}
}

// TestUntranslatedFields: every field of the App spec is translated, and
// a field the export does not know is named rather than dropped.
func TestUntranslatedFields(t *testing.T) {
	a := readApps(t, "testdata/export/full.yaml")[0]
	if got := untranslated(a.Spec); len(got) != 0 {
		t.Fatalf("fields of full.yaml without a translation: %v (add them to the export and to translatedFields)", got)
	}
	// full.yaml sets every field the export translates, so that the
	// golden files cover them all.
	b, _ := json.Marshal(a.Spec)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, f := range translatedFields {
		if f == "scale.rps" || f == "scale.cpuUtilization" || f == "scale.memoryUtilization" {
			continue // one load target per App: internal-cpu.yaml has these
		}
		v := any(m)
		for _, k := range strings.Split(f, ".") {
			v, _ = v.(map[string]any)[k]
		}
		if v == nil {
			t.Errorf("testdata/export/full.yaml does not set spec.%s", f)
		}
	}
	got := untranslated(map[string]any{"image": "x", "scale": map[string]any{"min": 1, "burst": 3}, "allowFrom": []any{map[string]any{"app": "b"}}})
	if want := []string{"allowFrom", "scale.burst"}; !slices.Equal(got, want) {
		t.Fatalf("untranslated: got %v, want %v", got, want)
	}
}
