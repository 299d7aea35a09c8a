package ingress

import "sort"

// EndpointIDs returns the IDs of the endpoints the current table routes
// to, sorted. A daemon taking over from another waits for the endpoints
// of the replicas it adopted to be here before it accepts requests.
func (p *Proxy) EndpointIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.endpoints))
	for id, es := range p.endpoints {
		if !es.removed.Load() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
