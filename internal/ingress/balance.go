package ingress

import "math/rand/v2"

// The package-level functions of math/rand/v2 draw from a per-thread
// runtime source: no lock, no shared state on the request path.

// pick chooses a backend by weight among those with a share of traffic.
func (rt *route) pick() *backend {
	if len(rt.weighted) == 1 {
		return rt.weighted[0]
	}
	n := rand.IntN(100)
	for i, c := range rt.cum {
		if n < c {
			return rt.weighted[i]
		}
	}
	return rt.weighted[len(rt.weighted)-1]
}

// choose picks one of the backend's endpoints by the power of two
// choices: of two endpoints drawn at random, the one with fewer requests
// in flight (with two endpoints, that is least-in-flight). The backend
// has at least one endpoint.
func (b *backend) choose() *target {
	ts := b.targets
	n := len(ts)
	if n == 1 {
		return ts[0]
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	x, y := ts[i], ts[j]
	if y.ep.inflight.Load() < x.ep.inflight.Load() {
		return y
	}
	return x
}
