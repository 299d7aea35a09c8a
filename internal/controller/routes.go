package controller

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/internal/ingress"
)

// updateRoutes rebuilds the ingress table from every App.
func (c *Controller) updateRoutes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updateRoutesLocked()
}

// updateRoutesLocked builds the route table and hands it to the router;
// the caller holds c.mu.
func (c *Controller) updateRoutesLocked() {
	c.routeMu.Lock()
	defer c.routeMu.Unlock()
	if err := c.cfg.Router.Update(c.tableLocked()); err != nil {
		c.log.Error("update ingress routes", "err", err)
	}
}

// appRoutes is what the route table needs of one App: its spec, its
// resolved traffic targets and the endpoints of each revision.
type appRoutes struct {
	App       api.App
	Targets   []target
	Endpoints map[string][]ingress.Endpoint // revision → ready endpoints
	// Waiting is the revision requests wait for while there are no
	// targets (the App has no revision yet).
	Waiting string
	// Unavailable says, per revision, why it cannot get a replica
	// however long a request waits.
	Unavailable map[string]string
}

// tableLocked is the route table of the current state; the caller holds
// c.mu.
func (c *Controller) tableLocked() ingress.Table {
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	var in []appRoutes
	for _, n := range names {
		st := c.apps[n]
		if !st.exists {
			continue
		}
		ar := appRoutes{App: st.app, Targets: st.targets, Endpoints: map[string][]ingress.Endpoint{},
			Waiting: firstRevision(st), Unavailable: map[string]string{}}
		for _, rev := range append(targetRevisions(st.targets), ar.Waiting) {
			ar.Endpoints[rev] = c.endpointsLocked(st, rev)
			if reason, msg := c.problemLocked(st, rev); cannotStart[reason] {
				ar.Unavailable[rev] = fmt.Sprintf("app %s cannot serve: %s: %s", st.name, reason, msg)
			}
		}
		in = append(in, ar)
	}
	return routeTable(c.cfg.Domain, in)
}

// routeTable builds the ingress's route table (pure): for each App a
// route on its host to the revisions with a share of the traffic, and a
// route on each tag's host to the tagged revision alone.
func routeTable(domain string, apps []appRoutes) ingress.Table {
	var t ingress.Table
	for _, ar := range apps {
		a := ar.App
		rt := ingress.Route{
			Internal:   !a.Spec.Ingress.External,
			App:        a.Metadata.Name,
			Hosts:      []string{app.Host(a, domain)},
			PathPrefix: a.Spec.Ingress.PathPrefix,
			Timeout:    a.Spec.Ingress.Timeout.Duration,

			RedirectHTTPS: a.Spec.Ingress.RedirectHTTPS,
		}
		if f := a.Spec.Ingress.TLS; f != nil {
			rt.TLS = &ingress.TLSFiles{CertFile: f.CertFile, KeyFile: f.KeyFile}
		}
		if rt.PathPrefix == "/" {
			rt.PathPrefix = ""
		}
		if n, err := strconv.Atoi(a.Metadata.Annotations[AnnotationActivatorQueue]); err == nil && n > 0 {
			rt.MaxQueue = n
		}
		if d, err := time.ParseDuration(a.Metadata.Annotations[AnnotationActivatorTimeout]); err == nil && d > 0 {
			rt.QueueTimeout = d
		}
		for _, tg := range ar.Targets {
			if tg.Percent > 0 {
				rt.Backends = append(rt.Backends, ingress.Backend{Revision: tg.Revision, Percent: tg.Percent, Endpoints: ar.Endpoints[tg.Revision]})
			}
		}
		if len(ar.Targets) == 0 {
			// Routed from the moment it is stored: until its first
			// revision is made, requests wait for it (as at zero replicas).
			rt.Backends = []ingress.Backend{{Revision: ar.Waiting, Percent: 100, Endpoints: ar.Endpoints[ar.Waiting]}}
		}
		rt.Unavailable = unavailable(rt.Backends, ar.Unavailable)
		if len(rt.Backends) > 0 {
			t.Routes = append(t.Routes, rt)
		}
		for _, tg := range ar.Targets {
			if tg.Tag == "" {
				continue
			}
			tr := rt
			tr.Hosts = []string{app.TagHost(a, tg.Tag, domain)}
			tr.TLS = nil // the App's certificate names its host, not the tag's
			tr.Backends = []ingress.Backend{{Revision: tg.Revision, Percent: 100, Endpoints: ar.Endpoints[tg.Revision]}}
			tr.Unavailable = unavailable(tr.Backends, ar.Unavailable)
			t.Routes = append(t.Routes, tr)
		}
	}
	return t
}

// endpointsLocked lists the ready, not draining replicas of rev.
func (c *Controller) endpointsLocked(st *appState, rev string) []ingress.Endpoint {
	var eps []ingress.Endpoint
	for _, r := range st.replicas {
		if r.rev != rev {
			continue
		}
		v := r.view()
		if v.ready && !v.terminating && v.ip != "" {
			eps = append(eps, ingress.Endpoint{ID: r.id, Addr: net.JoinHostPort(v.ip, strconv.Itoa(r.port))})
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].ID < eps[j].ID })
	return eps
}

// routeNew routes a just-created App at once, before its first reconcile:
// from the moment apply is acknowledged, requests for its host wait for
// its first revision instead of finding no route.
func (c *Controller) routeNew(a api.App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stateLocked(a.Metadata.Name)
	if st.exists {
		return
	}
	st.app, st.exists = a, true
	c.updateRoutesLocked()
}

// firstRevision names the revision an App without traffic targets waits
// for: its latest, or the first it will have.
func firstRevision(st *appState) string {
	if n := len(st.revs); n > 0 {
		return st.revs[n-1].Name
	}
	return app.RevisionName(st.name, 1)
}

// cannotStart are the problems that keep a revision from getting a
// replica however long a request waits.
var cannotStart = map[string]bool{
	api.ReasonImageNotFound:    true,
	api.ReasonSecretNotFound:   true,
	api.ReasonCrashLoopBackOff: true,
	api.ReasonOOMKilled:        true,
}

// unavailable says why requests for backends without endpoints would
// wait in vain (why[revision]), or "" when a replica may still come.
func unavailable(bs []ingress.Backend, why map[string]string) string {
	for _, b := range bs {
		if len(b.Endpoints) == 0 && why[b.Revision] != "" {
			return why[b.Revision]
		}
	}
	return ""
}

// targetRevisions lists the revisions of targets.
func targetRevisions(ts []target) []string {
	out := make([]string, 0, len(ts)+1)
	for _, t := range ts {
		out = append(out, t.Revision)
	}
	return out
}
