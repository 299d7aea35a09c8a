package ingress

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestInternalRoutes: a route marked Internal answers loopback clients
// and those Config.Local accepts; others get the 404 of an unknown host.
// A route that is not internal answers everyone.
func TestInternalRoutes(t *testing.T) {
	rp := newReplica(t, "shop-1-a", nil)
	neighbour := netip.MustParseAddr("10.89.0.7")
	p, err := New(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Local: func(ip netip.Addr) bool { return ip == neighbour }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	internal := route1("shop", "shop-1", []string{"shop.localhost"}, rp.endpoint())
	internal.Internal = true
	public := route1("blog", "blog-1", []string{"blog.localhost"}, Endpoint{ID: "blog-1-a", Addr: rp.endpoint().Addr})
	mustUpdate(t, p, internal, public)
	tests := []struct {
		name, host, remote string
		want               int
	}{
		{"internal, from loopback", "shop.localhost", "127.0.0.1:4000", 200},
		{"internal, from IPv6 loopback", "shop.localhost", "[::1]:4000", 200},
		{"internal, from a local address", "shop.localhost", "10.89.0.7:4000", 200},
		{"internal, from elsewhere", "shop.localhost", "192.0.2.10:4000", 404},
		{"internal, from a v4-mapped elsewhere", "shop.localhost", "[::ffff:192.0.2.10]:4000", 404},
		{"internal, unparsable remote", "shop.localhost", "pipe", 404},
		{"public, from elsewhere", "blog.localhost", "192.0.2.10:4000", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
			r.RemoteAddr = tc.remote
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s from %s: %d %q, want %d", tc.host, tc.remote, w.Code, w.Body.String(), tc.want)
			}
		})
	}
}
