package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func appWith(gen, observed int64, conds ...api.Condition) api.App {
	a := api.App{Metadata: api.ObjectMeta{Name: "shop", Generation: gen}}
	a.Status.ObservedGeneration = observed
	a.Status.Conditions = conds
	a.Status.URL = "http://shop.localhost"
	return a
}

func cond(t api.ConditionType, s api.ConditionStatus, reason string) api.Condition {
	return api.Condition{Type: t, Status: s, Reason: reason, Message: "the " + reason + " message"}
}

func TestRolloutState(t *testing.T) {
	T, F := api.ConditionTrue, api.ConditionFalse
	ready := cond(api.ConditionReady, T, "")
	tests := []struct {
		name    string
		app     api.App
		done    bool
		failure string
	}{
		{"ready", appWith(3, 3, ready, cond(api.ConditionRolloutInProgress, F, ""), cond(api.ConditionDegraded, F, "")), true, ""},
		{"status of an older generation", appWith(3, 2, ready), false, ""},
		{"ready but still rolling out", appWith(3, 3, ready, cond(api.ConditionRolloutInProgress, T, api.ReasonDeploying)), false, ""},
		{"not ready yet", appWith(3, 3, cond(api.ConditionReady, F, api.ReasonDeploying)), false, ""},
		{"no conditions yet", appWith(3, 3), false, ""},
		{"image not found", appWith(3, 3, cond(api.ConditionReady, F, ""), cond(api.ConditionDegraded, T, api.ReasonImageNotFound)), false, "app/shop: ImageNotFound: the ImageNotFound message"},
		{"crash loop", appWith(3, 3, cond(api.ConditionDegraded, T, api.ReasonCrashLoopBackOff)), false, "CrashLoopBackOff"},
		{"a failing probe may still pass", appWith(3, 3, cond(api.ConditionReady, F, ""), cond(api.ConditionDegraded, T, api.ReasonProbeFailed)), false, ""},
		{"degraded for an older generation", appWith(3, 2, cond(api.ConditionDegraded, T, api.ReasonImageNotFound)), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done, err := rolloutState(tc.app, 3)
			if done != tc.done {
				t.Fatalf("done %v, want %v", done, tc.done)
			}
			if (err == nil) != (tc.failure == "") || err != nil && !strings.Contains(err.Error(), tc.failure) {
				t.Fatalf("failure %v, want %q", err, tc.failure)
			}
		})
	}
}

// sequence answers App with the next of its states on each call.
type sequence struct{ states []api.App }

func (s *sequence) App(ctx context.Context, name string) (api.App, error) {
	a := s.states[0]
	if len(s.states) > 1 {
		s.states = s.states[1:]
	}
	return a, nil
}

func TestWaitRollouts(t *testing.T) {
	T, F := api.ConditionTrue, api.ConditionFalse
	ready := appWith(2, 2, cond(api.ConditionReady, T, ""), cond(api.ConditionDegraded, F, ""))
	deploying := appWith(2, 2, cond(api.ConditionReady, F, api.ReasonDeploying), cond(api.ConditionRolloutInProgress, T, api.ReasonDeploying))
	t.Run("becomes ready", func(t *testing.T) {
		var out bytes.Buffer
		err := waitRollouts(context.Background(), &sequence{[]api.App{appWith(2, 1), deploying, ready}}, &out, map[string]int64{"shop": 2}, []string{"shop"}, 10*time.Second)
		if err != nil || out.String() != "app/shop ready: http://shop.localhost\n" {
			t.Fatalf("err %v, output %q", err, out.String())
		}
	})
	t.Run("times out naming the conditions", func(t *testing.T) {
		var out bytes.Buffer
		err := waitRollouts(context.Background(), &sequence{[]api.App{deploying}}, &out, map[string]int64{"shop": 2}, []string{"shop"}, 500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "not ready after 500ms:\napp/shop: Ready=False (Deploying): the Deploying message; RolloutInProgress=True (Deploying)") {
			t.Fatalf("err %v", err)
		}
	})
}
