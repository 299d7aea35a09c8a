package controller

import (
	"reflect"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/ingress"
)

func TestRouteTable(t *testing.T) {
	ep := func(id string) []ingress.Endpoint { return []ingress.Endpoint{{ID: id, Addr: "10.0.0.2:8080"}} }
	shop := shopApp(func(a *api.App) {
		a.Spec.Ingress.PathPrefix = "/"
		a.Metadata.Annotations = map[string]string{AnnotationActivatorQueue: "7", AnnotationActivatorTimeout: "3s"}
		a.Spec.Ingress.TLS = &api.IngressTLS{CertFile: "/c.pem", KeyFile: "/k.pem"}
		a.Spec.Ingress.RedirectHTTPS = true
	})
	blog := shopApp(func(a *api.App) {
		a.Metadata.Name = "blog"
		a.Spec.Ingress.Host = "blog.example.com"
		a.Spec.Ingress.PathPrefix = "/blog"
		a.Spec.Ingress.External = true
	})
	got := routeTable("localhost", []appRoutes{{
		App:       shop,
		Targets:   []target{{Revision: "shop-00001", Percent: 90, Tag: ""}, {Revision: "shop-00002", Percent: 10, Tag: ""}, {Revision: "shop-00002", Percent: 0, Tag: "canary"}, {Revision: "shop-00003", Percent: 0, Tag: ""}},
		Endpoints: map[string][]ingress.Endpoint{"shop-00001": ep("a"), "shop-00002": ep("b")},
	}, {
		// A tag alone routes only its own host (tags live under the domain).
		App:     blog,
		Targets: []target{{Revision: "blog-00001", Percent: 0, Tag: "next"}},
	}})
	want := ingress.Table{Routes: []ingress.Route{{
		App: "shop", Hosts: []string{"shop.localhost"}, MaxQueue: 7, QueueTimeout: 3 * time.Second, Internal: true,
		TLS: &ingress.TLSFiles{CertFile: "/c.pem", KeyFile: "/k.pem"}, RedirectHTTPS: true,
		Backends: []ingress.Backend{{Revision: "shop-00001", Percent: 90, Endpoints: ep("a")}, {Revision: "shop-00002", Percent: 10, Endpoints: ep("b")}},
	}, {
		App: "shop", Hosts: []string{"canary-shop.localhost"}, MaxQueue: 7, QueueTimeout: 3 * time.Second, Internal: true,
		RedirectHTTPS: true,
		Backends:      []ingress.Backend{{Revision: "shop-00002", Percent: 100, Endpoints: ep("b")}},
	}, {
		App: "blog", Hosts: []string{"next-blog.localhost"}, PathPrefix: "/blog",
		Backends: []ingress.Backend{{Revision: "blog-00001", Percent: 100}},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("route table:\n got %+v\nwant %+v", got, want)
	}
}

func TestRouteTableWaitingAndUnavailable(t *testing.T) {
	fresh := shopApp()
	broken := shopApp(func(a *api.App) { a.Metadata.Name = "broken" })
	why := "app broken cannot serve: ImageNotFound: no image"
	got := routeTable("localhost", []appRoutes{
		// Applied, no revision yet: requests wait for the first one.
		{App: fresh, Waiting: "shop-00001"},
		// A revision that can never start: requests get the reason, on
		// its tag's host too.
		{App: broken, Targets: []target{{Revision: "broken-00001", Percent: 100, Tag: ""}, {Revision: "broken-00001", Percent: 0, Tag: "x"}}, Waiting: "broken-00001",
			Unavailable: map[string]string{"broken-00001": why}},
	})
	want := ingress.Table{Routes: []ingress.Route{
		{App: "shop", Hosts: []string{"shop.localhost"}, Internal: true, Backends: []ingress.Backend{{Revision: "shop-00001", Percent: 100}}},
		{App: "broken", Hosts: []string{"broken.localhost"}, Internal: true, Backends: []ingress.Backend{{Revision: "broken-00001", Percent: 100}}, Unavailable: why},
		{App: "broken", Hosts: []string{"x-broken.localhost"}, Internal: true, Backends: []ingress.Backend{{Revision: "broken-00001", Percent: 100}}, Unavailable: why},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("route table:\n got %+v\nwant %+v", got, want)
	}
}
