package dockerapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// filters are the filters of a Docker list or prune request: each key
// with the values given for it. A key given several values matches any
// of them; several keys must all match.
type filters map[string][]string

// parseFilters reads the "filters" query parameter: JSON of
// {"key": {"value": true}} or the older {"key": ["value"]}.
func parseFilters(r *http.Request) (filters, error) {
	raw := r.URL.Query().Get("filters")
	f := filters{}
	if raw == "" {
		return f, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &sets); err == nil {
		for k, vs := range sets {
			for v, on := range vs {
				if on {
					f[k] = append(f[k], v)
				}
			}
			sort.Strings(f[k])
		}
		return f, nil
	}
	var lists map[string][]string
	if err := json.Unmarshal([]byte(raw), &lists); err != nil {
		return nil, errdefs.Invalid("filters %q are not JSON of {\"key\": {\"value\": true}}: %v", raw, err)
	}
	return lists, nil
}

// check refuses a key not among allowed, in Docker's words.
func (f filters) check(allowed ...string) error {
	for k := range f {
		if !slices.Contains(allowed, k) {
			return errdefs.Invalid("invalid filter '%s'", k)
		}
	}
	return nil
}

// has reports whether key was given.
func (f filters) has(key string) bool { return len(f[key]) > 0 }

// matchAny reports whether key was not given, or pred holds for one of
// its values.
func (f filters) matchAny(key string, pred func(v string) bool) bool {
	vs := f[key]
	if len(vs) == 0 {
		return true
	}
	return slices.ContainsFunc(vs, pred)
}

// matchLabels reports whether labels has every "label" filter: "KEY"
// (present) or "KEY=VALUE"; key names the filter ("label" or "label!"
// for its negation).
func (f filters) matchLabels(key string, labels map[string]string) bool {
	for _, v := range f[key] {
		k, want, withValue := strings.Cut(v, "=")
		got, ok := labels[k]
		match := ok && (!withValue || got == want)
		if key == "label!" {
			if match {
				return false
			}
			continue
		}
		if !match {
			return false
		}
	}
	return true
}
