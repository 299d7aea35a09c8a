package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// MaxInputBytes bounds the YAML stream Decode and Load read.
const MaxInputBytes = 4 << 20

var errTooLarge = errdefs.Invalid("input is larger than %d MiB: split it into several files", MaxInputBytes>>20)

// Document is one App read from a YAML stream, with where its fields are.
type Document struct {
	// Index is the 1-based position of the document in the stream,
	// counting empty documents.
	Index int
	// App is the decoded App, as written (no defaults applied).
	App  api.App
	root *value
	// multi is true when the stream held more than one document, so that
	// errors name the document.
	multi bool
}

// Line returns the line of the field at path ("spec.traffic[1].percent"),
// or of its nearest ancestor written in the document when the field
// itself is not (it was defaulted).
func (d Document) Line(path string) int { return d.root.lineOf(path) }

// Decode reads every App in a YAML (or JSON) stream of one or more
// documents separated by "---". Empty documents are skipped; a stream
// with no App is an error. Decoding is strict: unknown fields (with a
// suggestion when one is close), values of the wrong type, duplicate
// keys, and an apiVersion or kind other than skiff.dev/v1 App are errors.
// Every problem of every document is reported, each with its document
// (when the stream has several), line and field path:
//
//	document 2: line 7: spec.replicas: unknown field (did you mean spec.scale?)
//
// Errors are errdefs.ErrInvalid; FieldErrorsOf lists them. Decode applies
// no defaults and does not Validate: Load does both.
func Decode(r io.Reader) ([]api.App, error) {
	docs, err := DecodeDocuments(r)
	if err != nil {
		return nil, err
	}
	apps := make([]api.App, len(docs))
	for i, d := range docs {
		apps[i] = d.App
	}
	return apps, nil
}

// Load reads every App in a YAML stream as Decode does, applies defaults
// and validates each. It returns all the Apps or, if any document has a
// problem, none, with every problem of every document, each placed at its
// line (or its nearest written ancestor's, for a defaulted field).
func Load(r io.Reader) ([]api.App, error) {
	docs, errs, err := decodeDocuments(r)
	if err != nil {
		return nil, err
	}
	apps := make([]api.App, 0, len(docs))
	for _, d := range docs {
		app := Clone(d.App)
		SetDefaults(&app)
		for _, fe := range Validate(app) {
			fe.Line = d.Line(fe.Path)
			if d.multi {
				fe.Document = d.Index
			}
			errs = append(errs, fe)
		}
		apps = append(apps, app)
	}
	sortByPosition(errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		return nil, errNoApp
	}
	return apps, nil
}

// DecodeDocuments is Decode keeping each App's document index and field
// lines.
func DecodeDocuments(r io.Reader) ([]Document, error) {
	docs, errs, err := decodeDocuments(r)
	if err != nil {
		return nil, err
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errNoApp
	}
	return docs, nil
}

var errNoApp = errdefs.Invalid("no App found: the input is empty")

// decodeDocuments decodes the documents it can and returns the problems
// of the others; err is set only when the input cannot be read at all.
func decodeDocuments(r io.Reader) (docs []Document, errs FieldErrors, err error) {
	data, err := readAll(r, MaxInputBytes)
	if err != nil {
		if errors.Is(err, errdefs.ErrInvalid) {
			return nil, nil, err
		}
		return nil, nil, errdefs.Invalid("read apps: %w", err)
	}
	defer func() {
		// yaml.v3 is a large parser fed with untrusted input: a panic in
		// it must fail this input, not the daemon.
		if p := recover(); p != nil {
			docs, errs, err = nil, nil, errdefs.Invalid("malformed YAML: %v", p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	total := 0
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		total++
		if err != nil {
			errs = append(errs, &FieldError{Document: total, Message: yamlMessage(err)})
			break
		}
		root, derrs := decodeValue(&n)
		if derrs == nil && root.kind == kindNull {
			continue // an empty document
		}
		if derrs == nil {
			var app api.App
			app, derrs = decodeApp(root)
			if derrs == nil {
				docs = append(docs, Document{Index: total, App: app, root: root})
			}
		}
		for _, fe := range derrs {
			fe.Document = total
		}
		errs = append(errs, derrs...)
	}
	if total <= 1 {
		for _, fe := range errs {
			fe.Document = 0
		}
	}
	for i := range docs {
		docs[i].multi = total > 1
	}
	sortByPosition(errs)
	return docs, errs, nil
}

// sortByPosition puts problems in the order of the stream, keeping the
// field order of problems on one line.
func sortByPosition(errs FieldErrors) {
	slices.SortStableFunc(errs, func(a, b *FieldError) int {
		if a.Document != b.Document {
			return a.Document - b.Document
		}
		return a.Line - b.Line
	})
}

// yamlMessage turns a yaml.v3 syntax error into a message starting
// "line N:" like every other decode error.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if !strings.HasPrefix(msg, "line ") {
		return "malformed YAML: " + msg
	}
	line, rest, _ := strings.Cut(msg, ": ")
	return line + ": malformed YAML: " + rest
}

// decodeValue converts a parsed document into a value tree.
func decodeValue(n *yaml.Node) (*value, FieldErrors) {
	c := &converter{budget: maxValues}
	v := c.convert(n, "", 0)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return v, nil
}

// appType is the Go type documents are checked against.
var appType = reflect.TypeFor[api.App]()

// decodeApp checks the value tree of one document against the App type
// and decodes it.
func decodeApp(root *value) (api.App, FieldErrors) {
	var errs FieldErrors
	fail := func(line int, path, format string, args ...any) {
		errs = append(errs, &FieldError{Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if root.kind != kindMap {
		fail(root.line, "", "an App must be a mapping with apiVersion, kind, metadata and spec, got %s", root.describe())
		return api.App{}, errs
	}
	for _, id := range []struct{ name, want string }{{"apiVersion", api.AppAPIVersion}, {"kind", api.AppKind}} {
		v := root.get(id.name)
		switch {
		case v == nil:
			fail(root.line, id.name, "required: set it to %s", id.want)
		case v.kind != kindString || v.text != id.want:
			fail(root.lineOf(id.name), id.name, "must be %s, got %s", id.want, v.describe())
		}
	}
	if len(errs) > 0 {
		// Not an App: checking its other fields would only add noise.
		return api.App{}, errs
	}
	w := &walker{}
	w.check(appType, root, "")
	if len(w.errs) > 0 {
		return api.App{}, w.errs
	}
	var buf bytes.Buffer
	root.writeJSON(&buf)
	var app api.App
	if err := json.Unmarshal(buf.Bytes(), &app); err != nil {
		// The walker accepts only what encoding/json does; this is a bug
		// in it, reported rather than hidden.
		fail(root.line, "", "cannot decode: %v", err)
		return api.App{}, errs
	}
	return app, nil
}

// walker checks a value tree against a Go type as encoding/json would
// decode it, but reporting every problem with its path, refusing unknown
// fields and matching field names exactly (encoding/json ignores case).
type walker struct {
	errs FieldErrors
}

func (w *walker) fail(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (w *walker) check(t reflect.Type, v *value, path string) {
	if v.kind == kindNull {
		return // null leaves the field as it is, like an absent one
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := jsonFields(t)
	if reflect.PointerTo(t).Implements(unmarshalerType) && (v.kind != kindMap || len(fields) == 0) {
		// A type with its own syntax (Duration, time.Time, the short forms
		// of probe actions): let it judge the value.
		var buf bytes.Buffer
		v.writeJSON(&buf)
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(buf.Bytes()); err != nil {
			w.fail(v.line, path, "%s", unmarshalMessage(t, v, err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if v.kind != kindMap {
			w.fail(v.line, path, "must be a mapping, got %s", v.describe())
			return
		}
		for _, f := range v.fields {
			sf, ok := fields[f.name]
			if !ok {
				w.fail(f.line, child(path, f.name), "unknown field%s", suggest(t, fields, path, f.name))
				continue
			}
			w.check(sf.Type, f.value, child(path, f.name))
		}
	case reflect.Map:
		if v.kind != kindMap {
			w.fail(v.line, path, "must be a mapping, got %s", v.describe())
			return
		}
		for _, f := range v.fields {
			w.check(t.Elem(), f.value, key(path, f.name))
		}
	case reflect.Slice:
		if v.kind != kindSeq {
			w.fail(v.line, path, "must be a list, got %s", v.describe())
			return
		}
		for i, item := range v.items {
			w.check(t.Elem(), item, index(path, i))
		}
	case reflect.String:
		if v.kind != kindString {
			w.fail(v.line, path, "must be a string, got %s%s", v.describe(), quoteHint(v))
		}
	case reflect.Bool:
		if v.kind != kindBool {
			w.fail(v.line, path, "must be true or false, got %s", v.describe())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.kind != kindInt {
			w.fail(v.line, path, "must be a whole number, got %s", v.describe())
			return
		}
		if _, err := strconv.ParseInt(v.text, 10, t.Bits()); err != nil {
			w.fail(v.line, path, "is out of range: %s", v.text)
		}
	default:
		// The App types hold nothing else.
		w.fail(v.line, path, "cannot be decoded into %s", t)
	}
}

// quoteHint suggests quoting a scalar written where a string belongs.
func quoteHint(v *value) string {
	switch v.kind {
	case kindInt, kindFloat, kindBool:
		return fmt.Sprintf(`: quote it ("%s")`, nonEmpty(v.src, v.text))
	}
	return ""
}

// unmarshalMessage turns the error of a type's own UnmarshalJSON into a
// field message.
func unmarshalMessage(t reflect.Type, v *value, err error) string {
	switch t {
	case reflect.TypeFor[api.Duration]():
		return err.Error() + ", got " + v.describe()
	case reflect.TypeFor[api.HTTPGetAction]():
		return "must be a path such as /healthz or a mapping with path, port and headers, got " + v.describe()
	case reflect.TypeFor[api.TCPSocketAction]():
		return "must be a port number or a mapping with port, got " + v.describe()
	case reflect.TypeFor[time.Time]():
		return `must be a time such as "2025-01-02T15:04:05Z", got ` + v.describe()
	}
	return err.Error()
}

// fieldCache holds jsonFields' results by type.
var fieldCache sync.Map // reflect.Type → map[string]reflect.StructField

// jsonFields returns the JSON fields of a struct type by name. The map is
// shared: callers must not change it.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	if t.Kind() != reflect.Struct {
		return nil
	}
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("json")
		if !ok || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		out[name] = f
	}
	fieldCache.Store(t, out)
	return out
}

// alias points from a field name people bring from Kubernetes, Docker
// Compose or Knative to where skiff keeps the same thing.
type alias struct {
	// path is relative to the mapping the unknown field is in.
	path string
	// hint, when set, replaces the suggestion with advice.
	hint string
}

// aliases holds the known aliases by the type of the mapping they occur in.
var aliases = map[reflect.Type]map[string]alias{
	appType: {
		"name":   {path: "metadata.name"},
		"labels": {path: "metadata.labels"},
		"image":  {path: "spec.image"},
	},
	reflect.TypeFor[api.AppSpec](): {
		"replicas":       {path: "scale"},
		"minScale":       {path: "scale.min"},
		"maxScale":       {path: "scale.max"},
		"minReplicas":    {path: "scale.min"},
		"maxReplicas":    {path: "scale.max"},
		"autoscaling":    {path: "scale"},
		"containerPort":  {path: "port"},
		"ports":          {path: "port"},
		"entrypoint":     {path: "command"},
		"cmd":            {path: "args"},
		"environment":    {path: "env"},
		"cpu":            {path: "resources.cpu"},
		"memory":         {path: "resources.memory"},
		"limits":         {path: "resources"},
		"volumeMounts":   {path: "volumes"},
		"readinessProbe": {path: "probes.readiness"},
		"livenessProbe":  {path: "probes.liveness"},
		"startupProbe":   {path: "probes.startup"},
		"healthcheck":    {path: "probes"},
		"host":           {path: "ingress.host"},
		"timeoutSeconds": {path: "ingress.timeout"},
		"containers":     {hint: "an App runs one container: set spec.image, spec.command, spec.env directly"},
	},
	reflect.TypeFor[api.ObjectMeta](): {
		"namespace": {hint: "skiff has no namespaces: App names are unique on the machine"},
	},
	reflect.TypeFor[api.Probes](): {
		"readinessProbe": {path: "readiness"},
		"livenessProbe":  {path: "liveness"},
		"startupProbe":   {path: "startup"},
	},
	reflect.TypeFor[api.Probe](): {
		"httpGet":             {path: "http"},
		"tcpSocket":           {path: "tcp"},
		"initialDelaySeconds": {path: "initialDelay"},
		"periodSeconds":       {path: "period"},
		"timeoutSeconds":      {path: "timeout"},
	},
	reflect.TypeFor[api.Scale](): {
		"minReplicas":       {path: "min"},
		"maxReplicas":       {path: "max"},
		"minScale":          {path: "min"},
		"maxScale":          {path: "max"},
		"target":            {path: "concurrency"},
		"requestsPerSecond": {path: "rps"},
	},
	reflect.TypeFor[api.TrafficTarget](): {
		"revisionName":   {path: "revision"},
		"latestRevision": {path: "latest"},
		"weight":         {path: "percent"},
	},
	reflect.TypeFor[api.EnvVar](): {
		"valueFrom": {path: "secretRef"},
	},
	reflect.TypeFor[api.AppResources](): {
		"limits":   {hint: "set cpu, memory and pids directly under spec.resources: they are both limit and request"},
		"requests": {hint: "set cpu, memory and pids directly under spec.resources: they are both limit and request"},
	},
}

// suggest returns " (did you mean spec.scale?)" for an unknown field
// name of type t found at path, or "".
func suggest(t reflect.Type, fields map[string]reflect.StructField, path, name string) string {
	if a, ok := aliases[t][name]; ok {
		if a.hint != "" {
			return " (" + a.hint + ")"
		}
		return " (did you mean " + child(path, a.path) + "?)"
	}
	if len(name) > 64 {
		return ""
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestDist := "", 3
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return " (did you mean " + child(path, n) + "? names are case-sensitive)"
		}
		if d := levenshtein(strings.ToLower(n), strings.ToLower(name)); d < bestDist && d < len(n) {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return " (did you mean " + child(path, best) + "?)"
	}
	return ""
}

// levenshtein returns the edit distance between a and b, counting bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
