package kube

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// consumed records the fields of an object an import has read, so that
// what is left can be listed.
type consumed map[string]bool

// use marks paths ("spec.template.spec.containers[0].image") as read.
func (c consumed) use(paths ...string) {
	for _, p := range paths {
		c[p] = true
	}
}

// leftovers returns the paths of obj's non-empty fields that were not
// read: each is the shallowest path not read and not an ancestor of one
// read. Fields whose value equals an entry of ignore (an API server's
// defaults, by path) are not listed.
func leftovers(obj any, c consumed, ignore map[string]any) []string {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return []string{fmt.Sprintf("(unreadable: %v)", err)}
	}
	var out []string
	walk("", m, c, ignore, &out)
	slices.Sort(out)
	return out
}

func walk(path string, v any, c consumed, ignore map[string]any, out *[]string) {
	if c[path] || isEmpty(v) {
		return
	}
	if want, ok := ignore[ignoreKey(path)]; ok && fmt.Sprint(want) == fmt.Sprint(v) {
		return
	}
	if path != "" && !hasConsumedBelow(path, c) {
		*out = append(*out, path)
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			walk(join(path, k), sub, c, ignore, out)
		}
	case []any:
		for i, sub := range t {
			walk(fmt.Sprintf("%s[%d]", path, i), sub, c, ignore, out)
		}
	default:
		*out = append(*out, path)
	}
}

// ignoreKey is path with list indexes written [*].
func ignoreKey(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' {
			j := strings.IndexByte(path[i:], ']')
			b.WriteString("[*]")
			i += j
			continue
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

func hasConsumedBelow(path string, c consumed) bool {
	for p := range c {
		if strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	}
	return false
}
