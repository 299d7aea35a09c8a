package app

import (
	"os"
	"reflect"
	"regexp"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

// TestReferenceCoversEveryField checks that docs/app-reference.md names
// every field of an App (as `field`, `parent.field` or `list[].field`), so
// that a new field cannot ship without its meaning, default and
// Kubernetes counterpart.
func TestReferenceCoversEveryField(t *testing.T) {
	doc, err := os.ReadFile("../../docs/app-reference.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() || typ == reflect.TypeFor[api.Duration]() || seen[typ] {
			return
		}
		seen[typ] = true
		for name, f := range jsonFields(typ) {
			p := child(path, name)
			re := regexp.MustCompile("`([A-Za-z\\[\\].]*[.\\]])?" + regexp.QuoteMeta(name) + "(\\[\\])?`")
			if !re.Match(doc) {
				t.Errorf("docs/app-reference.md does not describe %s (write it as `%s`)", p, name)
			}
			walk(f.Type, p)
		}
	}
	walk(reflect.TypeFor[api.App](), "")
	if len(seen) < 15 {
		t.Fatalf("walked only %d types", len(seen))
	}
}
