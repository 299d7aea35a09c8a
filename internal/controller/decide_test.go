package controller

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// shopApp is the App the table tests start from: min 1 replica.
func shopApp(mods ...func(*api.App)) api.App {
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind,
		Metadata: api.ObjectMeta{Name: "shop", Generation: 1},
		Spec:     api.AppSpec{Image: "shop:1", Port: 8080}}
	for _, m := range mods {
		m(&a)
	}
	return a
}

// revN is revision n of the App with image "shop:N"; ready says it has
// been ready.
func revN(n int, ready bool) api.Revision {
	a := shopApp(func(a *api.App) { a.Spec.Image = fmt.Sprintf("shop:%d", n) })
	r, err := app.NewRevision(a, n, t0)
	if err != nil {
		panic(err)
	}
	r.Status.Ready = ready
	return r
}

// rep is a running replica; ready says its readiness probe passes.
func rep(id, rev string, ready bool, mods ...func(*replicaState)) replicaState {
	r := replicaState{ID: id, Name: rev + "-" + id, Revision: rev, Created: t0.Add(-time.Minute),
		replicaView: replicaView{ready: ready, everReady: ready, status: api.StatusRunning, ip: "10.0.0.2"}}
	for _, m := range mods {
		m(&r)
	}
	return r
}

// obs is an observation of shopApp at revision 1..len(revs), whose
// latest image (the spec) is that of the latest revision.
func obs(a api.App, revs []api.Revision, reps ...replicaState) observed {
	o := observed{App: a, Revs: revs, Replicas: reps, ImageIDs: map[string]string{}, RevErrs: map[string]revError{},
		Creating: map[string]int{}, Preparing: map[string]int{}, Want: map[string]int{}, Domain: "localhost"}
	for _, r := range revs {
		o.ImageIDs[r.Name] = "sha256:" + r.Name
	}
	if len(revs) > 0 {
		o.App.Spec.Image = revs[len(revs)-1].Spec.Image
	}
	return o
}

// outcome is what a table row checks of a decision.
type outcome struct {
	create    []createAction
	start     []string
	terminate []string // replica IDs
	ready     []string // revisions stored as ready
	prune     []string
	targets   []target
	// conds is "Ready=True Degraded=False/Reason RolloutInProgress=..."
	conds    string
	replicas api.ReplicaCounts
	events   []string // reasons, in order
}

func summarize(d decision) outcome {
	out := outcome{create: d.Create, start: d.Start, ready: d.ReadyRevisions, prune: d.Prune, targets: d.Targets, replicas: d.Status.Replicas}
	for _, t := range d.Terminate {
		out.terminate = append(out.terminate, t.ID)
	}
	var cs []string
	for _, typ := range []api.ConditionType{api.ConditionReady, api.ConditionDegraded, api.ConditionRolloutInProgress} {
		c, _ := app.GetCondition(d.Status, typ)
		s := fmt.Sprintf("%s=%s", typ, c.Status)
		if typ != api.ConditionReady || c.Status != api.ConditionTrue {
			s += "/" + c.Reason
		}
		cs = append(cs, s)
	}
	out.conds = strings.Join(cs, " ")
	for _, e := range d.Events {
		out.events = append(out.events, e.Reason)
	}
	return out
}

func rolling(a *api.App) {
	app.InitializeConditions(&a.Status, t0)
	app.MarkRolloutInProgress(&a.Status, api.ReasonDeploying, "starting", t0)
}

func TestDecide(t *testing.T) {
	r1, r2 := revN(1, true), revN(2, false)
	const (
		readyOK   = "Ready=True Degraded=False/ RolloutInProgress=False/"
		deploying = "Ready=Unknown/Deploying Degraded=False/ RolloutInProgress=True/Deploying"
	)
	cases := []struct {
		name string
		o    observed
		want outcome
	}{{
		name: "first revision gets min replicas",
		o:    obs(shopApp(), []api.Revision{revN(1, false)}),
		want: outcome{create: []createAction{{Revision: "shop-00001"}}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: deploying, replicas: api.ReplicaCounts{Desired: 1}},
	}, {
		name: "first replica ready: revision ready, app ready",
		o:    obs(shopApp(), []api.Revision{revN(1, false)}, rep("a", "shop-00001", true)),
		want: outcome{ready: []string{"shop-00001"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}, events: []string{"RevisionReady"}},
	}, {
		name: "rollout: new revision starts while the old one keeps the traffic",
		o:    obs(shopApp(), []api.Revision{r1, r2}, rep("a", "shop-00001", true)),
		want: outcome{create: []createAction{{Revision: "shop-00002"}}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=True Degraded=False/ RolloutInProgress=True/Deploying",
			replicas: api.ReplicaCounts{Desired: 2, Ready: 1}},
	}, {
		name: "rollout: traffic moves when the new revision is ready, the old drains",
		o:    obs(shopApp(rolling), []api.Revision{r1, r2}, rep("a", "shop-00001", true), rep("b", "shop-00002", true)),
		want: outcome{ready: []string{"shop-00002"}, terminate: []string{"a"}, targets: []target{{Revision: "shop-00002", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}, events: []string{"RevisionReady", "RolloutComplete"}},
	}, {
		name: "rollout: a new revision that is not ready yet is not terminated",
		o: obs(shopApp(), []api.Revision{r1, r2}, rep("a", "shop-00001", true),
			rep("b", "shop-00002", false, func(r *replicaState) { r.failingFor = t0.Add(-time.Second); r.lastErr = "connection refused" })),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=True Degraded=False/ RolloutInProgress=True/Deploying",
			replicas: api.ReplicaCounts{Desired: 2, Ready: 1}},
	}, {
		name: "rollback: traffic pinned to the older revision",
		o: obs(shopApp(func(a *api.App) { a.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 100}} }),
			[]api.Revision{r1, revN(2, true)}, rep("b", "shop-00002", true)),
		want: outcome{create: []createAction{{Revision: "shop-00001"}}, terminate: []string{"b"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=Unknown/Deploying Degraded=False/ RolloutInProgress=False/",
			replicas: api.ReplicaCounts{Desired: 1}},
	}, {
		name: "traffic split with a tag",
		o: obs(shopApp(func(a *api.App) {
			a.Spec.Traffic = []api.TrafficTarget{{Revision: "shop-00001", Percent: 90}, {Latest: true, Percent: 10}, {Latest: true, Tag: "canary"}}
		}), []api.Revision{r1, revN(2, true)}, rep("a", "shop-00001", true), rep("b", "shop-00002", true)),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 90, Tag: ""}, {Revision: "shop-00002", Percent: 10, Tag: ""}, {Revision: "shop-00002", Percent: 0, Tag: "canary"}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 2, Ready: 2}},
	}, {
		name: "scale to zero: the autoscaler wants none",
		o: func() observed {
			o := obs(shopApp(func(a *api.App) { a.Spec.Scale.Min = ptr(0) }), []api.Revision{r1}, rep("a", "shop-00001", true))
			o.Want["shop-00001"] = 0
			return o
		}(),
		want: outcome{terminate: []string{"a"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}}, conds: readyOK},
	}, {
		name: "scale from zero: the activator wants one",
		o: func() observed {
			o := obs(shopApp(func(a *api.App) { a.Spec.Scale.Min = ptr(0) }), []api.Revision{r1})
			o.Want["shop-00001"] = 1
			return o
		}(),
		want: outcome{create: []createAction{{Revision: "shop-00001"}}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: "Ready=Unknown/Deploying Degraded=False/ RolloutInProgress=False/", replicas: api.ReplicaCounts{Desired: 1}},
	}, {
		name: "scale from zero starts a prewarmed replica first",
		o: func() observed {
			o := obs(shopApp(func(a *api.App) { a.Spec.Scale.Min = ptr(0) }), []api.Revision{r1},
				rep("w", "shop-00001", false, func(r *replicaState) { r.Prewarm, r.status = true, api.StatusCreated }))
			o.Want["shop-00001"] = 1
			return o
		}(),
		want: outcome{start: []string{"w"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: "Ready=Unknown/Deploying Degraded=False/ RolloutInProgress=False/", replicas: api.ReplicaCounts{Desired: 1}},
	}, {
		name: "the autoscaler's count, bounded by max",
		o: func() observed {
			o := obs(shopApp(func(a *api.App) { a.Spec.Scale.Max = ptr(3) }), []api.Revision{r1}, rep("a", "shop-00001", true))
			o.Want["shop-00001"] = 5
			o.Creating["shop-00001"] = 1
			return o
		}(),
		want: outcome{create: []createAction{{Revision: "shop-00001"}}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 3, Ready: 1}},
	}, {
		name: "scale down removes the unready, then the newest",
		o: func() observed {
			o := obs(shopApp(), []api.Revision{r1},
				rep("old", "shop-00001", true, func(r *replicaState) { r.Created = t0.Add(-time.Hour) }),
				rep("new", "shop-00001", true), rep("sick", "shop-00001", false))
			o.Want["shop-00001"] = 1
			return o
		}(),
		want: outcome{terminate: []string{"sick", "new"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}},
	}, {
		name: "crash loop: Degraded CrashLoopBackOff",
		o: obs(shopApp(), []api.Revision{revN(1, false)},
			rep("a", "shop-00001", false, func(r *replicaState) { r.status, r.restarts = api.StatusRestarting, 3 })),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=False/CrashLoopBackOff Degraded=True/CrashLoopBackOff RolloutInProgress=True/CrashLoopBackOff",
			replicas: api.ReplicaCounts{Desired: 1}, events: []string{"CrashLoopBackOff"}},
	}, {
		name: "probes failing past their deadline: Degraded ProbeFailed",
		o: obs(shopApp(), []api.Revision{revN(1, false)},
			rep("a", "shop-00001", false, func(r *replicaState) { r.failingFor = t0.Add(-time.Minute); r.lastErr = "status 500" })),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=False/ProbeFailed Degraded=True/ProbeFailed RolloutInProgress=True/ProbeFailed",
			replicas: api.ReplicaCounts{Desired: 1}, events: []string{"ProbeFailed"}},
	}, {
		name: "image not found: no replica, Degraded",
		o: func() observed {
			o := obs(shopApp(), []api.Revision{revN(1, false)})
			delete(o.ImageIDs, "shop-00001")
			o.RevErrs["shop-00001"] = revError{api.ReasonImageNotFound, "revision shop-00001: no image shop:1"}
			return o
		}(),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=False/ImageNotFound Degraded=True/ImageNotFound RolloutInProgress=True/ImageNotFound",
			replicas: api.ReplicaCounts{Desired: 1}, events: []string{"ImageNotFound"}},
	}, {
		name: "network not found: no replica, Degraded",
		o: func() observed {
			o := obs(shopApp(), []api.Revision{revN(1, false)})
			o.Revs[0].Spec.Networks = []api.AppNetworkAttachment{{Name: "shop_default"}}
			o.RevErrs["shop-00001"] = revError{api.ReasonNetworkNotFound, "revision shop-00001: network shop_default does not exist"}
			return o
		}(),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=False/NetworkNotFound Degraded=True/NetworkNotFound RolloutInProgress=True/NetworkNotFound",
			replicas: api.ReplicaCounts{Desired: 1}, events: []string{"NetworkNotFound"}},
	}, {
		name: "a secret that cannot be read: no replica, Degraded",
		o: func() observed {
			o := obs(shopApp(), []api.Revision{revN(1, false)})
			o.Revs[0].Spec.Env = []api.EnvVar{{Name: "PW", SecretRef: "db/pw"}}
			return o
		}(),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=False/SecretNotFound Degraded=True/SecretNotFound RolloutInProgress=True/SecretNotFound",
			replicas: api.ReplicaCounts{Desired: 1}, events: []string{"SecretNotFound"}},
	}, {
		name: "a replica whose removal failed is terminated again",
		o: obs(shopApp(), []api.Revision{r1}, rep("a", "shop-00001", true),
			rep("gone", "shop-00000", false, func(r *replicaState) { r.status = api.StatusExited })),
		want: outcome{terminate: []string{"gone"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}},
	}, {
		name: "a replica being terminated is left to it",
		o: obs(shopApp(), []api.Revision{r1}, rep("a", "shop-00001", true),
			rep("b", "shop-00001", true, func(r *replicaState) { r.terminating = true })),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}}, conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}},
	}, {
		name: "daemon restart: running replicas and the prewarm pool are adopted",
		o: func() observed {
			a := shopApp(func(a *api.App) { a.Spec.Scale.Min, a.Spec.Scale.Prewarm = ptr(2), 1 })
			a.Status.LatestReadyRevision = "shop-00001"
			return obs(a, []api.Revision{r1}, rep("a", "shop-00001", true), rep("b", "shop-00001", true),
				rep("w", "shop-00001", false, func(r *replicaState) { r.Prewarm, r.status = true, api.StatusCreated }))
		}(),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}}, conds: readyOK, replicas: api.ReplicaCounts{Desired: 2, Ready: 2}},
	}, {
		name: "daemon restart: a replica never started is replaced",
		o: obs(shopApp(), []api.Revision{r1}, rep("a", "shop-00001", true),
			rep("dead", "shop-00001", false, func(r *replicaState) { r.status, r.NeverStarted = api.StatusCreated, true })),
		want: outcome{terminate: []string{"dead"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}, events: []string{"ReplicaFailed"}},
	}, {
		name: "daemon restart: the never-started replacement is created",
		o: obs(shopApp(), []api.Revision{r1},
			rep("dead", "shop-00001", false, func(r *replicaState) { r.status, r.NeverStarted = api.StatusCreated, true })),
		want: outcome{create: []createAction{{Revision: "shop-00001"}}, terminate: []string{"dead"}, targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}},
			conds:    "Ready=Unknown/Deploying Degraded=False/ RolloutInProgress=False/",
			replicas: api.ReplicaCounts{Desired: 1}, events: []string{"ReplicaFailed"}},
	}, {
		name: "daemon restart: replicas still starting are not doubled",
		o:    obs(shopApp(), []api.Revision{revN(1, false)}, rep("a", "shop-00001", false)),
		want: outcome{targets: []target{{Revision: "shop-00001", Percent: 100, Tag: ""}}, conds: deploying, replicas: api.ReplicaCounts{Desired: 1}},
	}, {
		name: "prewarm pool filled for the routed revision only",
		o: obs(shopApp(func(a *api.App) { a.Spec.Scale.Prewarm = 2 }), []api.Revision{r1, revN(2, true)},
			rep("a", "shop-00002", true)),
		want: outcome{create: []createAction{{Revision: "shop-00002", Prewarm: true}, {Revision: "shop-00002", Prewarm: true}},
			targets: []target{{Revision: "shop-00002", Percent: 100, Tag: ""}}, conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}},
	}, {
		name: "old revisions beyond the history limit are pruned",
		o: obs(shopApp(func(a *api.App) { a.Spec.RevisionHistoryLimit = ptr(1) }),
			[]api.Revision{revN(1, true), revN(2, true), revN(3, true), revN(4, true)},
			rep("a", "shop-00004", true), rep("b", "shop-00001", false, func(r *replicaState) { r.terminating = true })),
		want: outcome{prune: []string{"shop-00002"}, targets: []target{{Revision: "shop-00004", Percent: 100, Tag: ""}},
			conds: readyOK, replicas: api.ReplicaCounts{Desired: 1, Ready: 1}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decide(tc.o, t0)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarize(d); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decide:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNextRevision(t *testing.T) {
	a := shopApp(func(a *api.App) { a.Spec.Image = "shop:1" })
	r1, err := nextRevision(a, nil, nil, t0)
	if err != nil || r1 == nil || r1.Name != "shop-00001" || r1.Spec.Image != "shop:1" {
		t.Fatalf("first revision: %+v, %v", r1, err)
	}
	if r, err := nextRevision(a, []api.Revision{*r1}, nil, t0); err != nil || r != nil {
		t.Fatalf("same spec: %+v, %v; want no revision", r, err)
	}
	// Scaling and traffic are not the runnable part.
	b := a
	b.Spec.Scale.Max = ptr(3)
	b.Spec.Traffic = []api.TrafficTarget{{Latest: true, Percent: 100}}
	if r, err := nextRevision(b, []api.Revision{*r1}, nil, t0); err != nil || r != nil {
		t.Fatalf("scale and traffic change: %+v, %v; want no revision", r, err)
	}
	b.Spec.Env = []api.EnvVar{{Name: "MODE", Value: "prod"}}
	r2, err := nextRevision(b, []api.Revision{*r1}, nil, t0)
	if err != nil || r2 == nil || r2.Name != "shop-00002" || r2.Spec.Env[0].Value != "prod" {
		t.Fatalf("env change: %+v, %v; want shop-00002", r2, err)
	}
	// A rollback to the spec of revision 1 is a new revision too: revisions
	// are immutable and numbered in order.
	if r3, err := nextRevision(a, []api.Revision{*r1, *r2}, nil, t0); err != nil || r3 == nil || r3.Name != "shop-00003" {
		t.Fatalf("back to the first spec: %+v, %v; want shop-00003", r3, err)
	}
}

func TestDecideIsPure(t *testing.T) {
	o := obs(shopApp(), []api.Revision{revN(1, false)}, rep("a", "shop-00001", true), rep("b", "shop-00001", true))
	before := fmt.Sprintf("%+v", o)
	d1, _ := decide(o, t0)
	d2, _ := decide(o, t0)
	if after := fmt.Sprintf("%+v", o); after != before {
		t.Fatalf("decide changed its input:\n%s\n%s", before, after)
	}
	if !reflect.DeepEqual(d1, d2) {
		t.Fatalf("two decisions on one observation differ:\n%+v\n%+v", d1, d2)
	}
}
