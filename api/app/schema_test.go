package app

// This file generates schema/app.schema.json, the JSON Schema (draft
// 2020-12) editors use to check and complete App YAML, from the api
// types: their structure by reflection, their descriptions from the doc
// comments of api/app.go, and the constraints Validate enforces from the
// table below. Generating it keeps it in step with the types (a test
// fails when it is stale); validating every example against it with an
// independent JSON Schema implementation proves that it is a well-formed
// 2020-12 schema and that it accepts what skiff accepts.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api"
)

const schemaFile = "../../schema/app.schema.json"

// schemaRequired lists the fields a user must write, by Go type.
var schemaRequired = map[string][]string{
	"App":         {"apiVersion", "kind", "metadata", "spec"},
	"ObjectMeta":  {"name"},
	"AppSpec":     {"image"},
	"EnvVar":      {"name"},
	"HTTPHeader":  {"name", "value"},
	"ExecAction":  {"command"},
	"VolumeMount": {"name", "mountPath"},
	"Condition":   {"type", "status"},
}

// Patterns shared by several fields.
const (
	dnsLabelPattern    = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	dns1035Pattern     = `^[a-z]([-a-z0-9]*[a-z0-9])?$`
	quantityPattern    = `^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`
	durationPattern    = `^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`
	absolutePathPrefix = `^/`
)

// schemaConstraints adds Validate's rules to fields, by "Type.jsonName".
// Values a user may write to mean "the default" (0 for a port) stay
// allowed.
var schemaConstraints = map[string]map[string]any{
	"App.apiVersion":                  {"const": api.AppAPIVersion},
	"App.kind":                        {"const": api.AppKind},
	"App.status":                      {"readOnly": true},
	"ObjectMeta.name":                 {"pattern": dns1035Pattern, "maxLength": MaxNameLength},
	"ObjectMeta.uid":                  {"readOnly": true},
	"ObjectMeta.generation":           {"readOnly": true},
	"ObjectMeta.creationTimestamp":    {"readOnly": true},
	"AppSpec.image":                   {"minLength": 1, "maxLength": maxImageRefLength},
	"AppSpec.port":                    {"minimum": 0, "maximum": 65535},
	"AppSpec.revisionHistoryLimit":    {"minimum": 0, "maximum": MaxRevisionHistoryLimit},
	"EnvVar.name":                     {"pattern": envNameRE.String()},
	"EnvVar.secretRef":                {"pattern": `^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$`},
	"Ingress.host":                    {"pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`, "maxLength": maxDNSSubdomainLen},
	"Ingress.pathPrefix":              {"pattern": absolutePathPrefix},
	"AppResources.cpu":                {"pattern": quantityPattern},
	"AppResources.memory":             {"pattern": quantityPattern},
	"AppResources.pids":               {"minimum": 0},
	"Scale.min":                       {"minimum": 0},
	"Scale.max":                       {"minimum": 1},
	"Scale.concurrency":               {"minimum": 0},
	"Scale.rps":                       {"minimum": 0},
	"Scale.cpuUtilization":            {"minimum": 0, "maximum": 100},
	"Scale.memoryUtilization":         {"minimum": 0, "maximum": 100},
	"Scale.prewarm":                   {"minimum": 0},
	"Probe.successThreshold":          {"minimum": 0},
	"Probe.failureThreshold":          {"minimum": 0},
	"HTTPGetAction.path":              {"pattern": absolutePathPrefix},
	"HTTPGetAction.port":              {"minimum": 0, "maximum": 65535},
	"HTTPHeader.name":                 {"pattern": httpTokenRE.String()},
	"TCPSocketAction.port":            {"minimum": 0, "maximum": 65535},
	"ExecAction.command":              {"minItems": 1},
	"VolumeMount.name":                {"pattern": dnsLabelPattern, "maxLength": maxDNSLabelLength},
	"VolumeMount.mountPath":           {"pattern": absolutePathPrefix},
	"TrafficTarget.revision":          {"pattern": `^[a-z]([-a-z0-9]*[a-z0-9])?-[0-9]{5}$`},
	"TrafficTarget.percent":           {"minimum": 0, "maximum": 100},
	"TrafficTarget.tag":               {"pattern": dns1035Pattern},
	"Condition.status":                {"enum": []string{"True", "False", "Unknown"}},
	"AppStatus.observedGeneration":    {"minimum": 0},
	"ReplicaCounts.desired":           {"minimum": 0},
	"ReplicaCounts.ready":             {"minimum": 0},
	"AppStatus.latestCreatedRevision": {"pattern": `^[a-z]([-a-z0-9]*[a-z0-9])?-[0-9]{5}$`},
	"AppStatus.latestReadyRevision":   {"pattern": `^[a-z]([-a-z0-9]*[a-z0-9])?-[0-9]{5}$`},
}

// schemaObjectRules adds rules over a whole object, by Go type.
var schemaObjectRules = map[string]map[string]any{
	// Exactly one action per probe.
	"Probe": {"oneOf": []any{
		map[string]any{"required": []string{"http"}},
		map[string]any{"required": []string{"tcp"}},
		map[string]any{"required": []string{"exec"}},
	}},
}

// generateSchema builds the schema for api.App.
func generateSchema() ([]byte, error) {
	docs, err := parseDocs("../../api/app.go")
	if err != nil {
		return nil, err
	}
	g := &schemaGen{docs: docs, defs: map[string]any{}}
	root := g.object(reflect.TypeFor[api.App]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://skiff.dev/schema/app.schema.json"
	root["title"] = "skiff App"
	root["$defs"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// typeDocs are the doc comments of a file: types[T] and fields[T][F].
type typeDocs struct {
	types  map[string]string
	fields map[string]map[string]string
}

func parseDocs(file string) (typeDocs, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		return typeDocs{}, err
	}
	d := typeDocs{types: map[string]string{}, fields: map[string]map[string]string{}}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			doc := ts.Doc
			if doc == nil {
				doc = gd.Doc
			}
			d.types[ts.Name.Name] = cleanDoc(doc.Text())
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			d.fields[ts.Name.Name] = map[string]string{}
			for _, fl := range st.Fields.List {
				for _, n := range fl.Names {
					d.fields[ts.Name.Name][n.Name] = cleanDoc(fl.Doc.Text())
				}
			}
		}
	}
	return d, nil
}

// cleanDoc joins the lines of each paragraph of a doc comment.
func cleanDoc(s string) string {
	paras := strings.Split(strings.TrimSpace(s), "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(paras, "\n\n")
}

type schemaGen struct {
	docs typeDocs
	defs map[string]any
}

// ref returns a reference to the definition of a named struct type,
// defining it on first use.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name := t.Name()
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil // reserve against recursion
		g.defs[name] = g.object(t)
	}
	return map[string]any{"$ref": "#/$defs/" + name}
}

// object returns the schema of a struct type.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	name := t.Name()
	props := map[string]any{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("json")
		if !ok {
			continue
		}
		jn, _, _ := strings.Cut(tag, ",")
		p := g.typeSchema(f.Type)
		// Copy: a $ref map is shared by every use.
		prop := map[string]any{}
		for k, v := range p {
			prop[k] = v
		}
		if doc := g.docs.fields[name][f.Name]; doc != "" {
			prop["description"] = doc
		}
		for k, v := range schemaConstraints[name+"."+jn] {
			prop[k] = v
		}
		props[jn] = prop
	}
	s := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if doc := g.docs.types[name]; doc != "" {
		s["description"] = doc
	}
	if req := schemaRequired[name]; req != nil {
		s["required"] = req
	}
	for k, v := range schemaObjectRules[name] {
		s[k] = v
	}
	switch t {
	case reflect.TypeFor[api.HTTPGetAction]():
		return map[string]any{"description": s["description"], "anyOf": []any{
			map[string]any{"type": "string", "pattern": absolutePathPrefix, "description": "Short form: the path, on spec.port."},
			without(s, "description"),
		}}
	case reflect.TypeFor[api.TCPSocketAction]():
		return map[string]any{"description": s["description"], "anyOf": []any{
			map[string]any{"type": "integer", "minimum": 1, "maximum": 65535, "description": "Short form: the port."},
			without(s, "description"),
		}}
	}
	return s
}

func without(m map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// typeSchema returns the schema of a field type.
func (g *schemaGen) typeSchema(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case reflect.TypeFor[api.Duration]():
		if _, ok := g.defs["Duration"]; !ok {
			g.defs["Duration"] = map[string]any{
				"type":        "string",
				"pattern":     durationPattern,
				"description": g.docs.types["Duration"],
			}
		}
		return map[string]any{"$ref": "#/$defs/Duration"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.Struct:
		return g.ref(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	}
	panic(fmt.Sprintf("schema: no JSON Schema for %s", t))
}

// TestSchemaUpToDate regenerates the schema and compares it with
// schema/app.schema.json; -update rewrites the file.
func TestSchemaUpToDate(t *testing.T) {
	got, err := generateSchema()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, schemaFile, got)
	// Every constraint names a field that exists.
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	for k := range schemaConstraints {
		typ, field, _ := strings.Cut(k, ".")
		if _, ok := jsonFields(typeByName(t, typ))[field]; !ok {
			t.Errorf("schemaConstraints names %s, which does not exist", k)
		}
	}
}

// typeByName finds an App type by its Go name.
func typeByName(t *testing.T, name string) reflect.Type {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[api.App](), reflect.TypeFor[api.ObjectMeta](), reflect.TypeFor[api.AppSpec](),
		reflect.TypeFor[api.EnvVar](), reflect.TypeFor[api.Ingress](), reflect.TypeFor[api.AppResources](),
		reflect.TypeFor[api.Scale](), reflect.TypeFor[api.Probes](), reflect.TypeFor[api.Probe](),
		reflect.TypeFor[api.HTTPGetAction](), reflect.TypeFor[api.HTTPHeader](), reflect.TypeFor[api.TCPSocketAction](),
		reflect.TypeFor[api.ExecAction](), reflect.TypeFor[api.VolumeMount](), reflect.TypeFor[api.TrafficTarget](),
		reflect.TypeFor[api.Condition](), reflect.TypeFor[api.AppStatus](), reflect.TypeFor[api.ReplicaCounts](),
	} {
		if typ.Name() == name {
			return typ
		}
	}
	t.Fatalf("no App type %s", name)
	return nil
}

// compileSchema compiles the checked-in schema with an independent
// validator, which checks it against the 2020-12 meta-schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("app.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("app.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

// yamlInstances decodes every document of a YAML file as JSON values for
// the schema validator.
func yamlInstances(t *testing.T, file string) []any {
	t.Helper()
	docs, errs, err := decodeFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		return nil // not well-formed YAML: nothing for the schema to judge
	}
	var out []any
	for _, root := range docs {
		var buf bytes.Buffer
		root.writeJSON(&buf)
		v, err := jsonschema.UnmarshalJSON(&buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// decodeFile parses a YAML file into value trees, one per non-empty
// document; errs holds the problems of malformed documents.
func decodeFile(file string) (roots []*value, errs FieldErrors, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return roots, errs, nil
		} else if err != nil {
			return roots, append(errs, &FieldError{Message: err.Error()}), nil
		}
		root, derrs := decodeValue(&n)
		errs = append(errs, derrs...)
		if derrs == nil && root.kind != kindNull {
			roots = append(roots, root)
		}
	}
}

// TestSchemaAcceptsExamples validates every valid example, as written and
// defaulted, against the schema, and checks that each invalid example
// marked "# schema: invalid" is rejected by it too.
func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	valid, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, f := range valid {
		t.Run(filepath.Base(f), func(t *testing.T) {
			insts := yamlInstances(t, f)
			if len(insts) == 0 {
				t.Fatal("no documents")
			}
			for i, v := range insts {
				if err := sch.Validate(v); err != nil {
					t.Errorf("document %d: %v", i+1, err)
				}
			}
		})
	}
	invalid, _ := filepath.Glob("testdata/invalid/*.yaml")
	marked := 0
	for _, f := range invalid {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("# schema: invalid")) {
			continue
		}
		marked++
		t.Run(filepath.Base(f), func(t *testing.T) {
			insts := yamlInstances(t, f)
			if insts == nil {
				return // not even YAML: editors say so without a schema
			}
			rejected := slices.ContainsFunc(insts, func(v any) bool { return sch.Validate(v) != nil })
			if !rejected {
				t.Error("the schema accepts every document of an example it must reject")
			}
		})
	}
	if marked == 0 {
		t.Error("no invalid example is marked for the schema")
	}
}

// TestSchemaStatus checks that a full App as skiff returns it, status
// included, is valid against the schema.
func TestSchemaStatus(t *testing.T) {
	sch := compileSchema(t)
	a := validApp()
	a.Metadata.UID = "3f1e"
	a.Metadata.Generation = 2
	a.Metadata.CreationTimestamp = t0
	InitializeConditions(&a.Status, t0)
	MarkReady(&a.Status, t1)
	MarkDegraded(&a.Status, api.ReasonCrashLoopBackOff, "shop-00002 exits with 1", t1)
	a.Status.ObservedGeneration = 2
	a.Status.LatestCreatedRevision = "shop-00002"
	a.Status.LatestReadyRevision = "shop-00001"
	a.Status.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Latest: true, Percent: 100, Tag: "x", URL: "http://x-shop.localhost"}}
	a.Status.URL = "http://shop.localhost"
	a.Status.Replicas = api.ReplicaCounts{Desired: 1, Ready: 1}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Error(err)
	}
}
