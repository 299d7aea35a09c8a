package app

import (
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func TestConditions(t *testing.T) {
	tests := []struct {
		name string
		// before is applied at t0, then mark at t1.
		before func(s *api.AppStatus)
		mark   func(s *api.AppStatus)
		typ    api.ConditionType
		want   api.Condition
	}{
		{
			name: "initialize sets every condition unknown",
			mark: func(s *api.AppStatus) { InitializeConditions(s, t1) },
			typ:  api.ConditionDegraded,
			want: api.Condition{Type: api.ConditionDegraded, Status: api.ConditionUnknown, LastTransitionTime: t1},
		},
		{
			name:   "initialize keeps existing conditions",
			before: func(s *api.AppStatus) { MarkReady(s, t0) },
			mark:   func(s *api.AppStatus) { InitializeConditions(s, t1) },
			typ:    api.ConditionReady,
			want:   api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, LastTransitionTime: t0},
		},
		{
			name:   "ready from unknown transitions",
			before: func(s *api.AppStatus) { InitializeConditions(s, t0) },
			mark:   func(s *api.AppStatus) { MarkReady(s, t1) },
			typ:    api.ConditionReady,
			want:   api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, LastTransitionTime: t1},
		},
		{
			name:   "ready again keeps the transition time",
			before: func(s *api.AppStatus) { MarkReady(s, t0) },
			mark:   func(s *api.AppStatus) { MarkReady(s, t1) },
			typ:    api.ConditionReady,
			want:   api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, LastTransitionTime: t0},
		},
		{
			name:   "not ready after ready transitions",
			before: func(s *api.AppStatus) { MarkReady(s, t0) },
			mark:   func(s *api.AppStatus) { MarkNotReady(s, api.ReasonImageNotFound, "image x not found", t1) },
			typ:    api.ConditionReady,
			want: api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: api.ReasonImageNotFound,
				Message: "image x not found", LastTransitionTime: t1},
		},
		{
			name:   "a new reason with the same status keeps the time",
			before: func(s *api.AppStatus) { MarkDegraded(s, api.ReasonProbeFailed, "readiness failed", t0) },
			mark:   func(s *api.AppStatus) { MarkDegraded(s, api.ReasonCrashLoopBackOff, "exited 3 times", t1) },
			typ:    api.ConditionDegraded,
			want: api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: api.ReasonCrashLoopBackOff,
				Message: "exited 3 times", LastTransitionTime: t0},
		},
		{
			name:   "not degraded clears the reason",
			before: func(s *api.AppStatus) { MarkDegraded(s, api.ReasonOOMKilled, "oom", t0) },
			mark:   func(s *api.AppStatus) { MarkNotDegraded(s, t1) },
			typ:    api.ConditionDegraded,
			want:   api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse, LastTransitionTime: t1},
		},
		{
			name: "rollout defaults its reason",
			mark: func(s *api.AppStatus) { MarkRolloutInProgress(s, "", "starting shop-00002", t1) },
			typ:  api.ConditionRolloutInProgress,
			want: api.Condition{Type: api.ConditionRolloutInProgress, Status: api.ConditionTrue, Reason: api.ReasonDeploying,
				Message: "starting shop-00002", LastTransitionTime: t1},
		},
		{
			name:   "rollout complete",
			before: func(s *api.AppStatus) { MarkRolloutInProgress(s, "", "", t0) },
			mark:   func(s *api.AppStatus) { MarkRolloutComplete(s, t1) },
			typ:    api.ConditionRolloutInProgress,
			want:   api.Condition{Type: api.ConditionRolloutInProgress, Status: api.ConditionFalse, LastTransitionTime: t1},
		},
		{
			name:   "degraded leaves ready alone",
			before: func(s *api.AppStatus) { MarkReady(s, t0) },
			mark:   func(s *api.AppStatus) { MarkDegraded(s, api.ReasonCrashLoopBackOff, "", t1) },
			typ:    api.ConditionReady,
			want:   api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, LastTransitionTime: t0},
		},
		{
			name:   "ready unknown",
			before: func(s *api.AppStatus) { MarkNotReady(s, api.ReasonProbeFailed, "", t0) },
			mark:   func(s *api.AppStatus) { MarkReadyUnknown(s, api.ReasonDeploying, "first revision starting", t1) },
			typ:    api.ConditionReady,
			want: api.Condition{Type: api.ConditionReady, Status: api.ConditionUnknown, Reason: api.ReasonDeploying,
				Message: "first revision starting", LastTransitionTime: t1},
		},
		{
			name: "time is kept in UTC to the second",
			mark: func(s *api.AppStatus) { MarkReady(s, t1.Add(300*time.Millisecond).In(time.FixedZone("x", 7200))) },
			typ:  api.ConditionReady,
			want: api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, LastTransitionTime: t1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s api.AppStatus
			if tt.before != nil {
				tt.before(&s)
			}
			tt.mark(&s)
			got, ok := GetCondition(s, tt.typ)
			if !ok {
				t.Fatalf("no %s condition in %+v", tt.typ, s.Conditions)
			}
			if got != tt.want {
				t.Errorf("condition = %+v\nwant        %+v", got, tt.want)
			}
			// One condition per type, in a fixed order.
			seen := map[api.ConditionType]bool{}
			last := -1
			for _, c := range s.Conditions {
				if seen[c.Type] {
					t.Errorf("two %s conditions", c.Type)
				}
				seen[c.Type] = true
				if r := conditionRank(c.Type); r < last {
					t.Errorf("conditions out of order: %+v", s.Conditions)
				} else {
					last = r
				}
			}
		})
	}
}

func TestConditionOrder(t *testing.T) {
	var s api.AppStatus
	SetCondition(&s, api.Condition{Type: "Zeta", Status: api.ConditionTrue}, t0)
	MarkDegraded(&s, api.ReasonOOMKilled, "", t0)
	SetCondition(&s, api.Condition{Type: "Alpha", Status: api.ConditionTrue}, t0)
	MarkReady(&s, t0)
	MarkRolloutComplete(&s, t0)
	var got []api.ConditionType
	for _, c := range s.Conditions {
		got = append(got, c.Type)
	}
	want := []api.ConditionType{api.ConditionReady, api.ConditionRolloutInProgress, api.ConditionDegraded, "Alpha", "Zeta"}
	if len(got) != len(want) {
		t.Fatalf("conditions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("conditions %v, want %v", got, want)
		}
	}
}

func TestIsReady(t *testing.T) {
	ready := func(gen, observed int64) api.App {
		a := api.App{Metadata: api.ObjectMeta{Generation: gen}, Status: api.AppStatus{ObservedGeneration: observed}}
		MarkReady(&a.Status, t0)
		return a
	}
	notReady := ready(2, 2)
	MarkNotReady(&notReady.Status, api.ReasonProbeFailed, "", t1)
	tests := []struct {
		name string
		app  api.App
		want bool
	}{
		{name: "ready and current", app: ready(2, 2), want: true},
		{name: "ready but status is of an older spec", app: ready(3, 2), want: false},
		{name: "not ready", app: notReady, want: false},
		{name: "no conditions", app: api.App{}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsReady(tt.app); got != tt.want {
				t.Errorf("IsReady = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsDegraded(t *testing.T) {
	var a api.App
	if _, ok := IsDegraded(a); ok {
		t.Error("an App without conditions is degraded")
	}
	MarkDegraded(&a.Status, api.ReasonCrashLoopBackOff, "exits with 1", t0)
	if r, ok := IsDegraded(a); !ok || r != api.ReasonCrashLoopBackOff {
		t.Errorf("IsDegraded = %q, %v", r, ok)
	}
	MarkNotDegraded(&a.Status, t1)
	if _, ok := IsDegraded(a); ok {
		t.Error("still degraded after MarkNotDegraded")
	}
}
