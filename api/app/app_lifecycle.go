package app

import (
	"slices"
	"time"

	"skiff.dev/skiff/api"
)

// conditionOrder is the order conditions are kept in, so that status
// output is stable; other types follow, by name.
var conditionOrder = []api.ConditionType{api.ConditionReady, api.ConditionRolloutInProgress, api.ConditionDegraded}

// InitializeConditions adds every App condition missing from s with
// status Unknown, as a controller does when it first sees an App.
func InitializeConditions(s *api.AppStatus, now time.Time) {
	for _, t := range conditionOrder {
		if _, ok := GetCondition(*s, t); !ok {
			SetCondition(s, api.Condition{Type: t, Status: api.ConditionUnknown}, now)
		}
	}
}

// GetCondition returns the condition of type t, and whether s has one.
func GetCondition(s api.AppStatus, t api.ConditionType) (api.Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return api.Condition{}, false
}

// SetCondition sets c in s, replacing the condition of the same type.
// LastTransitionTime becomes now when the condition is new or its Status
// changes; a change of Reason or Message alone keeps the old time, so the
// time says since when the status holds. c.LastTransitionTime is ignored.
func SetCondition(s *api.AppStatus, c api.Condition, now time.Time) {
	c.LastTransitionTime = now.UTC().Truncate(time.Second)
	for i, old := range s.Conditions {
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		s.Conditions[i] = c
		return
	}
	s.Conditions = append(s.Conditions, c)
	slices.SortStableFunc(s.Conditions, func(a, b api.Condition) int {
		ra, rb := conditionRank(a.Type), conditionRank(b.Type)
		if ra != rb {
			return ra - rb
		}
		if a.Type < b.Type {
			return -1
		}
		if a.Type > b.Type {
			return 1
		}
		return 0
	})
}

func conditionRank(t api.ConditionType) int {
	if i := slices.Index(conditionOrder, t); i >= 0 {
		return i
	}
	return len(conditionOrder)
}

// MarkReady sets Ready to True: the App serves requests as its spec says.
func MarkReady(s *api.AppStatus, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue}, now)
}

// MarkNotReady sets Ready to False, with why.
func MarkNotReady(s *api.AppStatus, reason, message string, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason, Message: message}, now)
}

// MarkReadyUnknown sets Ready to Unknown, with why: skiff cannot tell yet
// (a first revision is starting).
func MarkReadyUnknown(s *api.AppStatus, reason, message string, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionReady, Status: api.ConditionUnknown, Reason: reason, Message: message}, now)
}

// MarkRolloutInProgress sets RolloutInProgress to True: a new revision is
// being brought up and traffic moved to it. An empty reason means
// api.ReasonDeploying.
func MarkRolloutInProgress(s *api.AppStatus, reason, message string, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionRolloutInProgress, Status: api.ConditionTrue, Reason: nonEmpty(reason, api.ReasonDeploying), Message: message}, now)
}

// MarkRolloutComplete sets RolloutInProgress to False: traffic is where
// the spec says.
func MarkRolloutComplete(s *api.AppStatus, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionRolloutInProgress, Status: api.ConditionFalse}, now)
}

// MarkDegraded sets Degraded to True, with a reason such as
// api.ReasonCrashLoopBackOff. It leaves Ready alone: an App whose latest
// revision crashes may still serve from an older one.
func MarkDegraded(s *api.AppStatus, reason, message string, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: reason, Message: message}, now)
}

// MarkNotDegraded sets Degraded to False.
func MarkNotDegraded(s *api.AppStatus, now time.Time) {
	SetCondition(s, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse}, now)
}

// IsReady reports whether app's status describes its current spec
// (status.observedGeneration equals metadata.generation) and its Ready
// condition is True.
func IsReady(app api.App) bool {
	if app.Status.ObservedGeneration != app.Metadata.Generation {
		return false
	}
	c, ok := GetCondition(app.Status, api.ConditionReady)
	return ok && c.Status == api.ConditionTrue
}

// IsDegraded reports whether app's Degraded condition is True, and why.
func IsDegraded(app api.App) (reason string, degraded bool) {
	c, ok := GetCondition(app.Status, api.ConditionDegraded)
	if !ok || c.Status != api.ConditionTrue {
		return "", false
	}
	return c.Reason, true
}
