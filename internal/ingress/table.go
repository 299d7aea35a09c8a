package ingress

import (
	"fmt"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// Defaults applied to zero fields of a Route.
const (
	// DefaultTimeout bounds a proxied request when Route.Timeout is 0.
	DefaultTimeout = 60 * time.Second
	// DefaultMaxQueue bounds the requests held per app when Route.MaxQueue is 0.
	DefaultMaxQueue = 100
	// DefaultQueueTimeout bounds how long a request is held when
	// Route.QueueTimeout is 0.
	DefaultQueueTimeout = 30 * time.Second
)

// Endpoint is one ready replica of a revision.
type Endpoint struct {
	// ID names the replica; it is unique across the whole table, and
	// InFlight and WaitIdle take it.
	ID string
	// Addr is the replica's "host:port", e.g. "10.89.0.5:8080".
	Addr string
}

// Backend is one revision's share of an app's traffic.
type Backend struct {
	Revision string
	// Percent is the revision's share, 0..100; the Percents of a route's
	// backends sum to 100. A backend at 0% is never chosen, whatever its
	// endpoints.
	Percent int
	// Endpoints are the revision's ready replicas. A chosen backend
	// without endpoints holds the request and asks the Activator for a
	// replica.
	Endpoints []Endpoint
}

// Route maps hosts (and an optional path prefix) to an app.
type Route struct {
	App string
	// Hosts are exact host names, matched case-insensitively and without
	// the port. The caller adds "APP.localhost" when it wants it.
	Hosts []string
	// PathPrefix restricts the route to a path and what lies below it
	// ("/api" matches "/api" and "/api/x", not "/apix"); "" matches all
	// paths. The longest matching prefix of a host wins. A path with
	// empty, "." or ".." segments (percent-encoded or not) is cleaned as
	// net/http's ServeMux cleans it ("/api/../x" is "/x"), then routed and
	// passed to the replica cleaned; other paths are passed unchanged.
	PathPrefix string
	// Timeout bounds a proxied request from the moment it is sent to a
	// replica until its response (body included, WebSocket sessions too)
	// is complete, the client's request body included: a body not all
	// received by then is answered 408, a replica that has the whole
	// request and does not answer 504; 0 means DefaultTimeout. Time
	// spent held waiting for a replica does not count: QueueTimeout
	// bounds that.
	Timeout  time.Duration
	Backends []Backend
	// MaxQueue bounds the requests of the app held while their chosen
	// backend has no endpoint; 0 means DefaultMaxQueue. The bound is per
	// app: routes of one app share one queue.
	MaxQueue int
	// QueueTimeout bounds how long one request is held; 0 means
	// DefaultQueueTimeout.
	QueueTimeout time.Duration
	// Internal restricts the route to clients on this machine (loopback,
	// and those Config.Local accepts); clients from elsewhere get the 404
	// of an unknown host.
	Internal bool
	// Unavailable, when set, says why the app cannot get a replica (its
	// image does not resolve, its replicas crash): a request whose chosen
	// backend has no endpoint is answered 503 with this message at once
	// instead of being held, and requests already held get the same
	// answer when the table that sets it lands.
	Unavailable string
	// TLS, when set, is the certificate served for the route's hosts on
	// the TLS listener (see ServeTLS) instead of one from the local CA.
	TLS *TLSFiles
	// RedirectHTTPS answers the route's plain HTTP requests with a 308 to
	// the same URL over HTTPS, once the proxy serves TLS.
	RedirectHTTPS bool
}

// TLSFiles names a PEM certificate (chain) file and its key file.
type TLSFiles struct {
	CertFile, KeyFile string
}

// Table is the whole routing state of a Proxy. Update replaces it at once.
type Table struct {
	Routes []Route
}

// validate checks t and returns an ErrInvalid error naming the first
// offending route and field.
func (t Table) validate() error {
	type hostPath struct{ host, prefix string }
	seen := make(map[hostPath]string)
	endpoints := make(map[string]string) // endpoint ID → addr
	for i, r := range t.Routes {
		where := fmt.Sprintf("routes[%d] (app %q)", i, r.App)
		if r.App == "" {
			return errdefs.Invalid("ingress table: routes[%d]: app is empty", i)
		}
		if len(r.Hosts) == 0 {
			return errdefs.Invalid("ingress table: %s: hosts is empty: give at least one host name", where)
		}
		prefix, err := normalizePrefix(r.PathPrefix)
		if err != nil {
			return errdefs.Invalid("ingress table: %s: pathPrefix: %w", where, err)
		}
		for j, h := range r.Hosts {
			host, err := normalizeHost(h)
			if err != nil {
				return errdefs.Invalid("ingress table: %s: hosts[%d]: %w", where, j, err)
			}
			k := hostPath{host, prefix}
			if other, dup := seen[k]; dup {
				return errdefs.Invalid("ingress table: %s: host %q with path prefix %q is already served by app %q: give one of them another host or prefix", where, host, prefix, other)
			}
			seen[k] = r.App
		}
		if r.Timeout < 0 || r.QueueTimeout < 0 || r.MaxQueue < 0 {
			return errdefs.Invalid("ingress table: %s: timeout, queueTimeout and maxQueue must not be negative", where)
		}
		if len(r.Backends) == 0 {
			return errdefs.Invalid("ingress table: %s: backends is empty: give at least one revision", where)
		}
		sum := 0
		revs := make(map[string]bool, len(r.Backends))
		for j, b := range r.Backends {
			if b.Revision == "" {
				return errdefs.Invalid("ingress table: %s: backends[%d]: revision is empty", where, j)
			}
			if revs[b.Revision] {
				return errdefs.Invalid("ingress table: %s: backends[%d]: revision %q appears twice", where, j, b.Revision)
			}
			revs[b.Revision] = true
			if b.Percent < 0 || b.Percent > 100 {
				return errdefs.Invalid("ingress table: %s: backends[%d] (revision %q): percent %d is outside 0..100", where, j, b.Revision, b.Percent)
			}
			sum += b.Percent
			for k, e := range b.Endpoints {
				if e.ID == "" {
					return errdefs.Invalid("ingress table: %s: backends[%d].endpoints[%d]: id is empty", where, j, k)
				}
				if _, _, err := net.SplitHostPort(e.Addr); err != nil {
					return errdefs.Invalid("ingress table: %s: endpoint %q: addr %q is not host:port", where, e.ID, e.Addr)
				}
				if addr, ok := endpoints[e.ID]; ok && addr != e.Addr {
					return errdefs.Invalid("ingress table: %s: endpoint %q has two addresses, %q and %q: endpoint ids must be unique", where, e.ID, addr, e.Addr)
				}
				endpoints[e.ID] = e.Addr
			}
		}
		if sum != 100 {
			return errdefs.Invalid("ingress table: %s: backend percents sum to %d, not 100", where, sum)
		}
	}
	return nil
}

// normalizeHost lowercases h and strips a trailing dot; it rejects names
// with a port, a path or spaces.
func normalizeHost(h string) (string, error) {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	switch {
	case h == "":
		return "", fmt.Errorf("host name is empty")
	case strings.ContainsAny(h, "/ \t:@"):
		return "", fmt.Errorf("host %q is not a bare host name: drop any scheme, port or path", h)
	}
	return h, nil
}

// normalizePrefix checks p and strips its trailing slashes: "/api/" and
// "/api" are the same prefix, and "/" is the same as "".
func normalizePrefix(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q does not start with /", p)
	}
	if strings.ContainsAny(p, "?#") {
		return "", fmt.Errorf("%q holds a query or fragment", p)
	}
	return strings.TrimRight(p, "/"), nil
}

// matchPrefix reports whether path lies at or below prefix, which has no
// trailing slash.
func matchPrefix(path, prefix string) bool {
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// isCleanPath reports whether a request path is routed as it is: it has
// no empty, "." or ".." segment. Paths that do not start with a slash
// ("*", or empty) are left alone.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		switch {
		case rest == "":
			return true
		case rest[0] == '/':
			return false
		case rest[0] == '.' && (len(rest) == 1 || rest[1] == '/'):
			return false
		case rest[0] == '.' && rest[1] == '.' && (len(rest) == 2 || rest[2] == '/'):
			return false
		}
	}
	return true
}

// cleanPath returns p cleaned as net/http's ServeMux cleans the paths it
// routes: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// withCleanPath returns a shallow copy of r whose path (and so request
// target) is cleaned: the path it is routed by is the path the replica
// gets, whatever dot segments or percent-encoded dots the client sent.
func withCleanPath(r *http.Request) *http.Request {
	r2 := r.WithContext(r.Context())
	u := *r.URL
	u.Path = cleanPath(u.Path)
	u.RawPath = ""
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return r2
}

// requestHost returns the host name of a request's Host header: without
// port, brackets or trailing dot, lowercased. It allocates only for
// upper-case names.
func requestHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// sortRoutes orders the routes of one host by decreasing prefix length, so
// the first match is the longest.
func sortRoutes(rs []*route) {
	slices.SortStableFunc(rs, func(a, b *route) int { return len(b.prefix) - len(a.prefix) })
}
