package app_test

import (
	"fmt"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
)

func ExampleLoad() {
	apps, err := app.Load(strings.NewReader(`
apiVersion: skiff.dev/v1
kind: App
metadata: {name: shop}
spec:
  image: localhost/shop:1.4
  scale: {min: 0}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := apps[0].Spec
	fmt.Println(s.Port, *s.Scale.Min, *s.Scale.Max, s.Scale.Concurrency, s.Scale.IdleTimeout)
	// Output: 8080 0 10 100 1m
}

func ExampleLoad_errors() {
	_, err := app.Load(strings.NewReader(`
apiVersion: skiff.dev/v1
kind: App
metadata: {name: shop}
spec:
  image: localhost/shop:1.4
  replicas: 3
---
apiVersion: skiff.dev/v1
kind: App
metadata: {name: cart}
spec:
  image: localhost/cart:2
  traffic:
    - {revision: cart-00001, percent: 50}
    - {latest: true, percent: 150}
`))
	fmt.Println(err)
	// Output:
	// document 1: line 7: spec.replicas: unknown field (did you mean spec.scale?)
	// document 2: line 16: spec.traffic[1].percent: must be 0..100
}

func ExampleNeedsNewRevision() {
	old := api.AppSpec{Image: "localhost/shop:1.4"}
	scaled := api.AppSpec{Image: "localhost/shop:1.4", Scale: api.Scale{Max: new(5)}}
	retagged := api.AppSpec{Image: "localhost/shop:1.5"}
	fmt.Println(app.NeedsNewRevision(old, scaled), app.NeedsNewRevision(old, retagged))
	fmt.Println(app.RevisionName("shop", 3))
	// Output:
	// false true
	// shop-00003
}

func ExampleDiff() {
	old := api.App{Metadata: api.ObjectMeta{Name: "shop"}, Spec: api.AppSpec{Image: "localhost/shop:1.4"}}
	next := old
	next.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 90}, {Latest: true, Percent: 10}}
	fmt.Print(app.Diff(old, next))
	// Output:
	// --- shop (old)
	// +++ shop (new)
	// @@ -22,6 +22,8 @@
	//        successThreshold: 1
	//        failureThreshold: 3
	//    traffic:
	// +    - revision: shop-00001
	// +      percent: 90
	//      - latest: true
	// -      percent: 100
	// +      percent: 10
	//    revisionHistoryLimit: 10
}

func ExampleMarkDegraded() {
	var s api.AppStatus
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	app.MarkReady(&s, t0)
	app.MarkDegraded(&s, api.ReasonCrashLoopBackOff, "shop-00002 exits with status 1", t0.Add(time.Minute))
	for _, c := range s.Conditions {
		fmt.Println(c.Type, c.Status, c.Reason, c.LastTransitionTime.Format(time.TimeOnly))
	}
	// Output:
	// Ready True  12:00:00
	// Degraded True CrashLoopBackOff 12:01:00
}
