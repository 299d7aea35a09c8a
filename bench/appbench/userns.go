package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// usernsBench measures the cold start of a scale-to-zero App with a user
// namespace (the default) next to the same App with hostUsers: true,
// interleaved in one run: the request's time from the ingress at zero
// replicas to the response. Target: at most 1.1× the host-users start.
func usernsBench() {
	addr := ingress()
	doc := func(name, extra string) string {
		return zeroApp(name, 0) + extra
	}
	apply(doc("bench-uns", ""))
	apply(doc("bench-hostusers", "  security: {hostUsers: true}\n"))
	defer sk("delete", "app", "bench-uns")
	defer sk("delete", "app", "bench-hostusers")
	withNS := &series{name: "App with a user namespace (default) at zero → response"}
	hostNS := &series{name: "App with hostUsers: true at zero → response"}
	run := func(app string, s *series) {
		waitZero(app)
		time.Sleep(200 * time.Millisecond)
		t := time.Now()
		code, _, err := get(addr, app+".localhost", "/")
		if err != nil || code != 200 {
			must(fmt.Errorf("cold request to %s: %d %v", app, code, err))
		}
		s.ds = append(s.ds, time.Since(t))
	}
	variants := []func(){
		func() { run("bench-uns", withNS) },
		func() { run("bench-hostusers", hostNS) },
	}
	for i := 0; i < *runs; i++ {
		for _, j := range rand.Perm(len(variants)) {
			variants[j]()
		}
	}
	fmt.Printf("### Cold start with a user namespace vs without (target ≤ 1.1×)\n\n")
	fmt.Printf("The example app at `scale: {min: 0, max: 1, idleTimeout: 1s}` with a 2s stable window; the two Apps differ only in `security.hostUsers`. A user namespace adds taking the App's spare pair of pinned user and network namespaces (made ahead of need), the idmapped mounts of the image layers and volumes, and runc's joining of the user namespace.\n\n")
	table([]*series{withNS, hostNS}, hostNS.name)
}
