package app

import (
	"fmt"

	"skiff.dev/skiff/api"
)

// Target is one resolved traffic target: a revision name, its share and
// its tag.
type Target struct {
	// Revision is the revision's name ("shop-00003").
	Revision string
	// Percent is the share of requests, 0..100.
	Percent int
	// Tag, when set, gives the target its own host (see TagHost).
	Tag string
}

// ResolveTraffic turns spec.traffic into revision names: "latest" means
// latestReady, or latestCreated if no revision was ever ready (its
// requests wait for it). An empty spec sends everything to that latest
// revision. Targets of the same revision are merged unless tagged;
// untagged 0% targets are kept. The skiff controller and the Kubernetes
// export route with the same result. The error names the target that has
// no revision to resolve to.
func ResolveTraffic(spec []api.TrafficTarget, latestReady, latestCreated string) ([]Target, error) {
	latest := latestReady
	if latest == "" {
		latest = latestCreated
	}
	if len(spec) == 0 {
		if latest == "" {
			return nil, nil
		}
		return []Target{{Revision: latest, Percent: 100}}, nil
	}
	var out []Target
	idx := map[string]int{}
	for i, t := range spec {
		name := t.Revision
		if t.Latest {
			name = latest
		}
		if name == "" {
			return nil, fmt.Errorf("spec.traffic[%d]: no revision exists yet", i)
		}
		if j, ok := idx[name]; ok && t.Tag == "" && out[j].Tag == "" {
			out[j].Percent += t.Percent
			continue
		}
		idx[name] = len(out)
		out = append(out, Target{Revision: name, Percent: t.Percent, Tag: t.Tag})
	}
	return out, nil
}

// ScaleBounds returns the fewest and most replicas sc allows, with the
// defaults applied: min 1, max 10, and max never below min.
func ScaleBounds(sc api.Scale) (lo, hi int) {
	lo, hi = DefaultMinScale, DefaultMaxScale
	if sc.Min != nil {
		lo = *sc.Min
	}
	if sc.Max != nil {
		hi = *sc.Max
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}
