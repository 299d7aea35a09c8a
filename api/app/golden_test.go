package app

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

var update = flag.Bool("update", false, "rewrite golden files and schema/app.schema.json")

// goldenInputs returns the .yaml inputs of a testdata directory, without
// the golden outputs.
func goldenInputs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".defaulted.yaml") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no inputs in testdata/%s", dir)
	}
	return out
}

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
		t.Fatalf("%v (run go test ./api/app -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", golden, textDiff(string(want), string(got)))
	}
}

// textDiff is a line diff for test failures.
func textDiff(want, got string) string {
	a := strings.SplitAfter(want, "\n")
	b := strings.SplitAfter(got, "\n")
	var out strings.Builder
	for _, o := range diffLines(a, b) {
		if o.kind != ' ' {
			out.WriteByte(o.kind)
			out.WriteString(o.line)
			if !strings.HasSuffix(o.line, "\n") {
				out.WriteByte('\n')
			}
		}
	}
	return out.String()
}

// TestGoldenValid loads each valid example, compares its defaulted form
// with NAME.defaulted.yaml, and checks that the defaulted form loads back
// to itself.
func TestGoldenValid(t *testing.T) {
	for _, in := range goldenInputs(t, "valid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			apps, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var docs [][]byte
			for _, a := range apps {
				b, err := MarshalYAML(a)
				if err != nil {
					t.Fatal(err)
				}
				docs = append(docs, b)
			}
			got := bytes.Join(docs, []byte("---\n"))
			checkGolden(t, strings.TrimSuffix(in, ".yaml")+".defaulted.yaml", got)

			again, err := Load(bytes.NewReader(got))
			if err != nil {
				t.Fatalf("Load of the defaulted form: %v", err)
			}
			if len(again) != len(apps) {
				t.Fatalf("defaulted form holds %d apps, want %d", len(again), len(apps))
			}
			for i := range apps {
				if d := Diff(apps[i], again[i]); d != "" {
					t.Errorf("defaulted form of app %d does not load back to itself:\n%s", i, d)
				}
				if errs := Validate(again[i]); errs != nil {
					t.Errorf("defaulted form of app %d is invalid: %v", i, errs.Err())
				}
			}
		})
	}
}

// TestGoldenInvalid loads each invalid example and compares the error
// with NAME.errors: the exact list of problems, with lines and paths.
func TestGoldenInvalid(t *testing.T) {
	for _, in := range goldenInputs(t, "invalid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			apps, err := Load(f)
			if err == nil {
				t.Fatalf("Load accepted %d apps, want an error", len(apps))
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error is not ErrInvalid: %v", err)
			}
			if apps != nil {
				t.Errorf("Load returned apps with an error")
			}
			checkGolden(t, strings.TrimSuffix(in, ".yaml")+".errors", []byte(err.Error()+"\n"))
		})
	}
}
