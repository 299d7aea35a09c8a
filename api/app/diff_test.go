package app

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func diffBase() api.App {
	return api.App{
		Metadata: api.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "web"}},
		Spec:     baseSpec(),
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(a *api.App)
		want   string
	}{
		{
			name:   "no change",
			change: func(a *api.App) {},
			want:   "",
		},
		{
			name: "status and server metadata are ignored",
			change: func(a *api.App) {
				a.Metadata.Generation = 9
				a.Metadata.UID = "u"
				a.Metadata.CreationTimestamp = t0
				MarkReady(&a.Status, t0)
				a.Status.URL = "http://shop.localhost"
			},
			want: "",
		},
		{
			name:   "defaults written out are no change",
			change: func(a *api.App) { a.Spec.Port = DefaultPort; a.APIVersion = api.AppAPIVersion },
			want:   "",
		},
		{
			name:   "image",
			change: func(a *api.App) { a.Spec.Image = "localhost/shop:1.5" },
			want: `--- shop (old)
+++ shop (new)
@@ -5,7 +5,7 @@
   labels:
     team: web
 spec:
-  image: localhost/shop:1.4
+  image: localhost/shop:1.5
   command:
     - /shop
   args:
`,
		},
		{
			name: "two hunks",
			change: func(a *api.App) {
				a.Metadata.Labels["team"] = "shop"
				a.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 90}, {Latest: true, Percent: 10}}
			},
			want: `--- shop (old)
+++ shop (new)
@@ -3,7 +3,7 @@
 metadata:
   name: shop
   labels:
-    team: web
+    team: shop
 spec:
   image: localhost/shop:1.4
   command:
@@ -40,6 +40,8 @@
     - name: data
       mountPath: /data
   traffic:
+    - revision: shop-00001
+      percent: 90
     - latest: true
-      percent: 100
+      percent: 10
   revisionHistoryLimit: 10
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := diffBase(), diffBase()
			tt.change(&new)
			got := Diff(old, new)
			if got != tt.want {
				t.Errorf("Diff:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestDiffAppliesAsPatch checks Diff's output against GNU patch: applying
// it to the old YAML must give the new YAML, for many kinds of change.
func TestDiffAppliesAsPatch(t *testing.T) {
	patch, err := exec.LookPath("patch")
	if err != nil {
		t.Fatalf("patch is needed to check Diff's output: %v", err)
	}
	changes := []func(a *api.App){
		func(a *api.App) { a.Spec.Image = "y" },
		func(a *api.App) { a.Metadata.Labels = nil },
		func(a *api.App) { a.Metadata.Annotations = map[string]string{"z": "line1\nline2\n"} },
		func(a *api.App) { a.Spec.Env = nil; a.Spec.Volumes = nil },
		func(a *api.App) {
			a.Spec.Probes.Liveness = &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}}
		},
		func(a *api.App) { a.Spec.Command = append(a.Spec.Command, "a", "b", "c", "d", "e", "f", "g", "h") },
		func(a *api.App) { a.Metadata.Name = "other"; a.Spec = api.AppSpec{Image: "z"} },
		func(a *api.App) {
			for i := range 40 {
				a.Spec.Env = append(a.Spec.Env, api.EnvVar{Name: fmt.Sprintf("V%d", i), Value: "x"})
			}
			a.Spec.Traffic[0].Tag = "t"
		},
	}
	dir := t.TempDir()
	for i, change := range changes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			old, new := diffBase(), diffBase()
			change(&new)
			d := Diff(old, new)
			if d == "" {
				t.Fatal("no diff")
			}
			file := filepath.Join(dir, fmt.Sprintf("app%d.yaml", i))
			writeFile(t, file, string(diffForm(old)))
			writeFile(t, file+".diff", d)
			out, err := exec.Command(patch, "--quiet", "--force", file, file+".diff").CombinedOutput()
			if err != nil {
				t.Fatalf("patch: %v\n%s\ndiff:\n%s", err, out, d)
			}
			if got := readFile(t, file); got != string(diffForm(new)) {
				t.Errorf("patched file differs from the new form:\n%s", textDiff(string(diffForm(new)), got))
			}
		})
	}
}

func TestDiffLinesLarge(t *testing.T) {
	// Past maxDiffCells the middle is replaced whole, still a correct diff.
	var a, b []string
	for i := range 3000 {
		a = append(a, fmt.Sprintf("a%d\n", i))
		b = append(b, fmt.Sprintf("b%d\n", i))
	}
	ops := diffLines(append([]string{"same\n"}, a...), append([]string{"same\n"}, b...))
	var removed, added int
	for _, o := range ops {
		switch o.kind {
		case '-':
			removed++
		case '+':
			added++
		}
	}
	if removed != 3000 || added != 3000 || ops[0].kind != ' ' {
		t.Errorf("removed %d, added %d, first %q", removed, added, ops[0].kind)
	}
	if !strings.HasPrefix(ops[1].line, "a0") {
		t.Errorf("removals do not come first: %q", ops[1].line)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnifiedDiffOfNewText(t *testing.T) {
	got := UnifiedDiff("a (live)", "a (applied)", "", "x: 1\ny: 2\n")
	want := "--- a (live)\n+++ a (applied)\n@@ -0,0 +1,2 @@\n+x: 1\n+y: 2\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if UnifiedDiff("a", "b", "x\n", "x\n") != "" {
		t.Error("equal texts differ")
	}
	got = UnifiedDiff("a", "b", "x: 1\n", "")
	if got != "--- a\n+++ b\n@@ -1 +0,0 @@\n-x: 1\n" {
		t.Errorf("deleted text:\n%s", got)
	}
}
