package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

const header = "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: shop}\n"

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // the error's lines
	}{
		{
			name: "unknown field at depth",
			in:   header + "spec:\n  image: x\n  probes:\n    liveness:\n      http:\n        path: /\n        scheme: HTTPS\n",
			want: []string{"line 10: spec.probes.liveness.http.scheme: unknown field"},
		},
		{
			name: "unknown field in a list item",
			in:   header + "spec:\n  image: x\n  env:\n  - name: A\n  - name: B\n    valu: 1\n",
			want: []string{"line 9: spec.env[1].valu: unknown field (did you mean spec.env[1].value?)"},
		},
		{
			name: "every unknown field is reported",
			in:   header + "spec:\n  image: x\n  a: 1\n  b: 2\nextra: 3\n",
			want: []string{
				"line 6: spec.a: unknown field",
				"line 7: spec.b: unknown field",
				"line 8: extra: unknown field",
			},
		},
		{
			name: "field names are case-sensitive",
			in:   header + "spec:\n  IMAGE: x\n",
			want: []string{"line 5: spec.IMAGE: unknown field (did you mean spec.image? names are case-sensitive)"},
		},
		{
			name: "wrong type for a struct",
			in:   header + "spec: nginx\n",
			want: []string{`line 4: spec: must be a mapping, got a string ("nginx")`},
		},
		{
			name: "number for a string",
			in:   header + "spec:\n  image: x\n  env: [{name: PORT, value: 8080}]\n",
			want: []string{`line 6: spec.env[0].value: must be a string, got an integer (8080): quote it ("8080")`},
		},
		{
			name: "string for a number",
			in:   header + "spec:\n  image: x\n  scale: {max: ten}\n",
			want: []string{`line 6: spec.scale.max: must be a whole number, got a string ("ten")`},
		},
		{
			name: "fraction for a whole number",
			in:   header + "spec:\n  image: x\n  port: 80.5\n",
			want: []string{"line 6: spec.port: must be a whole number, got a number (80.5)"},
		},
		{
			name: "number too large",
			in:   header + "spec:\n  image: x\n  resources: {pids: 9223372036854775808}\n",
			want: []string{"line 6: spec.resources.pids: is out of range: 9223372036854775808"},
		},
		{
			name: "bare number for a duration",
			in:   header + "spec:\n  image: x\n  scale: {idleTimeout: 60}\n",
			want: []string{`line 6: spec.scale.idleTimeout: must be a duration such as "30s", "1m30s" or "500ms", got an integer (60)`},
		},
		{
			name: "malformed duration",
			in:   header + "spec:\n  image: x\n  ingress: {timeout: 5 minutes}\n",
			want: []string{`line 6: spec.ingress.timeout: must be a duration such as "30s", "1m30s" or "500ms", got a string ("5 minutes")`},
		},
		{
			name: "malformed time",
			in:   header + "spec: {image: x}\nstatus:\n  conditions: [{type: Ready, status: \"True\", lastTransitionTime: yesterday}]\n",
			want: []string{`line 6: status.conditions[0].lastTransitionTime: must be a time such as "2025-01-02T15:04:05Z", got a string ("yesterday")`},
		},
		{
			name: "duplicate key",
			in:   header + "spec:\n  image: x\n  image: y\n",
			want: []string{"line 6: spec.image: duplicate key (first at line 5)"},
		},
		{
			// yaml.v3 reports the line where the unclosed list's context
			// starts.
			name: "bad YAML",
			in:   header + "spec:\n  image: [x\n",
			want: []string{"line 4: malformed YAML: did not find expected ',' or ']'"},
		},
		{
			name: "tab indentation",
			in:   header + "spec:\n\timage: x\n",
			want: []string{"line 5: malformed YAML: found character that cannot start any token"},
		},
		{
			name: "wrong apiVersion",
			in:   "apiVersion: skiff.dev/v2\nkind: App\nmetadata: {name: shop}\nspec: {image: x, bogus: 1}\n",
			want: []string{`line 1: apiVersion: must be skiff.dev/v1, got a string ("skiff.dev/v2")`},
		},
		{
			name: "kind of another kind",
			in:   "apiVersion: skiff.dev/v1\nkind: Service\nmetadata: {name: shop}\n",
			want: []string{`line 2: kind: must be App, got a string ("Service")`},
		},
		{
			name: "kind not a string",
			in:   "apiVersion: skiff.dev/v1\nkind: [App]\n",
			want: []string{"line 2: kind: must be App, got a list"},
		},
		{
			name: "a scalar document",
			in:   "hello\n",
			want: []string{`line 1: an App must be a mapping with apiVersion, kind, metadata and spec, got a string ("hello")`},
		},
		{
			name: "errors of several documents",
			in:   header + "spec: {image: x, a: 1}\n---\n---\n" + header + "spec: {image: x, b: 1}\n",
			want: []string{"document 1: line 4: spec.a: unknown field", "document 3: line 10: spec.b: unknown field"},
		},
		{
			name: "empty input",
			in:   "",
			want: []string{"no App found: the input is empty"},
		},
		{
			name: "only empty documents",
			in:   "---\n# nothing\n---\n...\n",
			want: []string{"no App found: the input is empty"},
		},
		{
			name: "null document",
			in:   "null\n",
			want: []string{"no App found: the input is empty"},
		},
		{
			name: "alias to an unknown anchor",
			in:   header + "spec: *nothing\n",
			want: []string{`malformed YAML: unknown anchor 'nothing' referenced`},
		},
		{
			name: "merge of a scalar",
			in:   header + "base: &b 1\nspec:\n  <<: *b\n",
			// Problems with the YAML itself come first: fields are checked
			// once the document is well-formed.
			want: []string{"line 6: spec: a merge key (<<) must name a mapping, got an integer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := Decode(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Decode = %+v, want an error", apps)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error is not ErrInvalid: %v", err)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDecodeFieldErrors(t *testing.T) {
	in := header + "spec: {image: x, a: 1}\n---\n" + header + "spec: {image: x, b: 1}\n"
	_, err := Decode(strings.NewReader(in))
	errs := FieldErrorsOf(err)
	if len(errs) != 2 {
		t.Fatalf("FieldErrorsOf = %v", errs)
	}
	want := FieldError{Document: 2, Line: 9, Path: "spec.b", Message: "unknown field"}
	if *errs[1] != want {
		t.Errorf("second error = %+v, want %+v", *errs[1], want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "spec.a" {
		t.Errorf("errors.As found %+v, want the first error", fe)
	}
	if errdefs.Category(err) != errdefs.ErrInvalid {
		t.Errorf("Category = %v", errdefs.Category(err))
	}
	if FieldErrorsOf(errors.New("other")) != nil {
		t.Error("FieldErrorsOf found errors in a plain error")
	}
}

func TestDecodeForms(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, apps []api.App)
	}{
		{
			name: "short probe forms",
			in:   header + "spec:\n  image: x\n  probes: {readiness: {http: /healthz}, liveness: {tcp: 9000}}\n",
			check: func(t *testing.T, apps []api.App) {
				p := apps[0].Spec.Probes
				if p.Readiness.HTTP == nil || p.Readiness.HTTP.Path != "/healthz" || p.Liveness.TCP == nil || p.Liveness.TCP.Port != 9000 {
					t.Errorf("probes = %+v %+v", p.Readiness, p.Liveness)
				}
			},
		},
		{
			name: "JSON",
			in:   `{"apiVersion":"skiff.dev/v1","kind":"App","metadata":{"name":"j"},"spec":{"image":"x","port":81}}`,
			check: func(t *testing.T, apps []api.App) {
				if apps[0].Metadata.Name != "j" || apps[0].Spec.Port != 81 {
					t.Errorf("app = %+v", apps[0])
				}
			},
		},
		{
			name: "null fields are absent fields",
			in:   header + "spec:\n  image: x\n  command: null\n  scale: ~\n  probes:\n    readiness:\n",
			check: func(t *testing.T, apps []api.App) {
				s := apps[0].Spec
				if s.Command != nil || s.Scale.Min != nil || s.Probes.Readiness != nil {
					t.Errorf("spec = %+v", s)
				}
			},
		},
		{
			name: "YAML 1.2 booleans: yes is a string",
			in:   header + "spec:\n  image: x\n  env: [{name: A, value: yes}, {name: B, value: off}]\n  ingress: {external: true}\n",
			check: func(t *testing.T, apps []api.App) {
				s := apps[0].Spec
				if s.Env[0].Value != "yes" || s.Env[1].Value != "off" || !s.Ingress.External {
					t.Errorf("spec = %+v", s)
				}
			},
		},
		{
			name: "anchors, aliases and merge keys",
			in: header + "spec:\n  image: &img localhost/x:1\n  command: [*img]\n" +
				"  resources:\n    <<: [{cpu: \"1\", memory: 64Mi}, {cpu: \"2\", pids: 9}]\n    memory: 128Mi\n",
			check: func(t *testing.T, apps []api.App) {
				s := apps[0].Spec
				if s.Command[0] != "localhost/x:1" || s.Resources != (api.AppResources{CPU: "1", Memory: "128Mi", Pids: 9}) {
					t.Errorf("spec = %+v", s)
				}
			},
		},
		{
			name: "quoted strings and block scalars",
			in:   header + "spec:\n  image: \"x\"\n  args:\n    - '8080'\n    - |\n      two\n      lines\n",
			check: func(t *testing.T, apps []api.App) {
				if a := apps[0].Spec.Args; a[0] != "8080" || a[1] != "two\nlines\n" {
					t.Errorf("args = %q", a)
				}
			},
		},
		{
			name: "timestamps and status",
			in: header + "spec: {image: x}\nstatus:\n  observedGeneration: 3\n" +
				"  conditions: [{type: Ready, status: \"True\", lastTransitionTime: 2026-01-02T03:04:05Z}]\n",
			check: func(t *testing.T, apps []api.App) {
				c := apps[0].Status.Conditions[0]
				if c.LastTransitionTime != time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) || apps[0].Status.ObservedGeneration != 3 {
					t.Errorf("status = %+v", apps[0].Status)
				}
			},
		},
		{
			name: "a document end marker and a leading separator",
			in:   "---\n" + header + "spec: {image: x}\n...\n---\n" + header + "spec: {image: y}\n",
			check: func(t *testing.T, apps []api.App) {
				if len(apps) != 2 || apps[1].Spec.Image != "y" {
					t.Errorf("apps = %+v", apps)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := Decode(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, apps)
		})
	}
}

func TestDocumentLine(t *testing.T) {
	in := "---\n# empty\n---\n" + header + "spec:\n  image: x\n  traffic:\n  - latest: true\n    percent: 50\n  - revision: shop-00001\n"
	docs, err := DecodeDocuments(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	d := docs[0]
	if d.Index != 2 {
		t.Errorf("Index = %d, want 2 (the empty document counts)", d.Index)
	}
	for path, want := range map[string]int{
		"":                         4,
		"kind":                     5,
		"metadata.name":            6,
		"spec.image":               8,
		"spec.traffic":             9,
		"spec.traffic[0].percent":  11,
		"spec.traffic[1]":          12,
		"spec.traffic[1].percent":  12, // not written: its item's line
		"spec.traffic[7].percent":  9,  // no such item: the list's line
		"spec.scale.min":           7,  // not written: spec's line
		"metadata.labels[team]":    6,
		"spec.traffic[x].revision": 9,
	} {
		if got := d.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestLoadPlacesValidationErrors(t *testing.T) {
	// spec.image is not written: its error is placed on spec's line.
	in := header + "spec:\n  port: 80\n  traffic:\n  - latest: true\n    percent: 150\n"
	_, err := Load(strings.NewReader(in))
	want := "line 4: spec.image: required: the container image to run, such as localhost/shop:1.4\n" +
		"line 8: spec.traffic[0].percent: must be 0..100"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Run("input too large", func(t *testing.T) {
		big := header + "spec:\n  image: x\n  args:\n" + strings.Repeat("  - aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", MaxInputBytes/40)
		_, err := Decode(strings.NewReader(big))
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "larger than 4 MiB") {
			t.Fatalf("Decode = %v", err)
		}
	})
	t.Run("alias expansion bomb", func(t *testing.T) {
		in := header + "a: &a [x, x, x, x, x, x, x, x, x, x]\n" +
			"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
			"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
			"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
			"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n" +
			"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
			"spec:\n  image: x\n  args: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		start := time.Now()
		_, err := Decode(strings.NewReader(in))
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "too large after expanding aliases") {
			t.Fatalf("Decode = %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("rejecting an alias bomb took %v", d)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		in := header + "spec:\n  image: x\n  x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n"
		_, err := Decode(strings.NewReader(in))
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "nesting is deeper than") {
			t.Fatalf("Decode = %v", err)
		}
	})
	t.Run("reader error", func(t *testing.T) {
		_, err := Decode(io.MultiReader(strings.NewReader(header), errReader{}))
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "read apps") {
			t.Fatalf("Decode = %v", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestMarshalRoundTrip checks that every example, as written and as
// defaulted, survives MarshalYAML and Decode unchanged.
func TestMarshalRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			apps, err := Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range apps {
				checkRoundTrip(t, a)
				SetDefaults(&a)
				MarkReady(&a.Status, t0)
				a.Metadata.CreationTimestamp = t0
				checkRoundTrip(t, a)
			}
		})
	}
}

// checkRoundTrip fails unless a reads back from its YAML form to an App
// with the same JSON form.
func checkRoundTrip(t *testing.T, a api.App) {
	t.Helper()
	y, err := MarshalYAML(a)
	if err != nil {
		t.Fatalf("MarshalYAML: %v", err)
	}
	back, err := Decode(bytes.NewReader(y))
	if err != nil {
		t.Fatalf("Decode of MarshalYAML output: %v\n%s", err, y)
	}
	// Compare JSON forms; strings holding invalid UTF-8 are compared as
	// JSON carries them (with U+FFFD), as every App on the wire is.
	j1, _ := json.Marshal(a)
	var norm api.App
	if err := json.Unmarshal(j1, &norm); err != nil {
		t.Fatal(err)
	}
	j1, _ = json.Marshal(norm)
	j2, _ := json.Marshal(back[0])
	if !bytes.Equal(j1, j2) {
		t.Fatalf("round trip changed the App:\n%s\nYAML:\n%s", textDiff(string(j1), string(j2)), y)
	}
}

// FuzzDecode checks that no input makes Decode panic, that every error is
// ErrInvalid, and that whatever decodes survives MarshalYAML and Decode.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(header + "spec: {image: x, args: [\"\\t\\u0000 \\u2028\", \"#\", \": x\", \"- y\", \"'\", \"\\\"\"]}"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("<<: {apiVersion: skiff.dev/v1, kind: App}\nmetadata: {name: x}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		apps, err := Decode(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error is not ErrInvalid: %v", err)
			}
			if apps != nil {
				t.Fatal("apps returned with an error")
			}
			return
		}
		for _, a := range apps {
			checkRoundTrip(t, a)
		}
		// Load must not panic on anything Decode accepts.
		if _, err := Load(bytes.NewReader(in)); err != nil && !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("Load error is not ErrInvalid: %v", err)
		}
	})
}

func TestMarshalRoundTripStrings(t *testing.T) {
	tricky := []string{
		"", " ", "a\n b", "  leading\n", "trailing \nx", "\ttab\n", "x\r\ny", "\n\n", "#\n", "- x", ": y",
		"'quoted'", `"double"`, "null", "~", "true", "yes", "0x1F", "1e3", "08", ".inf", "@at", "`tick`",
		"a: b\nc: d\n", "\u2028line separator", "emoji 🚢", "\x7f", "bell\a", "nul\x00byte", "---", "...",
		"key: &anchor", "*alias", "!tag", "%directive", "{flow}", "[seq]", "a\n\n\nb\n\n",
	}
	a := validApp()
	a.Spec.Args = tricky
	a.Metadata.Annotations = map[string]string{}
	for i, s := range tricky {
		a.Metadata.Annotations[fmt.Sprintf("k%d", i)] = s
	}
	checkRoundTrip(t, a)
}

// FuzzMarshalRoundTrip checks that any string in an App survives
// MarshalYAML and Decode, as `skiff get -o yaml | skiff apply` needs.
func FuzzMarshalRoundTrip(f *testing.F) {
	for _, s := range []string{"a\n b", "\ttab\n", " x\ny ", "#", "a: b", "\u2028", "\r\n", "|", ">-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := validApp()
		a.Spec.Args = []string{s, s + "\n", "\n" + s}
		a.Metadata.Annotations = map[string]string{"k": s}
		checkRoundTrip(t, a)
	})
}
