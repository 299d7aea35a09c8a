package gitops

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// Op is what a sync does to one App.
type Op string

// The operations of a plan, and the action names results carry.
const (
	OpCreate    Op = "created"
	OpUpdate    Op = "configured"
	OpUnchanged Op = "unchanged"
	OpPrune     Op = "pruned"
)

// Step is one App of a plan.
type Step struct {
	Op   Op
	Name string
	// App is the desired App, for creates and updates.
	App api.App
	// Drift is set when the App differs from (or is missing from) what
	// the source applied at the same commit: a change made by hand.
	Drift bool
}

// PlanInput is everything a plan is made from.
type PlanInput struct {
	// Source is the source's name.
	Source string
	// Desired are the Apps of the commit, loaded and validated.
	Desired []api.App
	// Live are every App stored now.
	Live []api.App
	// Sources are the names of every source that exists.
	Sources map[string]bool
	// Prune deletes owned Apps the commit no longer declares.
	Prune bool
	// SameCommit is set when the commit is the one last applied: any
	// difference then is drift.
	SameCommit bool
	// Applied are the Apps the source's last sync applied. One of them
	// without an owner annotation lost it to a hand edit (skiff apply
	// replaces metadata): it is still the source's.
	Applied map[string]bool
}

// Plan returns the steps that make the Apps the source owns match its
// commit: creates and updates by name, then prunes by name. An App owned
// by another source, or by no source, that the commit declares makes the
// whole plan fail (ErrConflict) naming each: nothing may be applied. An
// App whose owner annotation names a source that no longer exists is
// taken over. Plan is pure.
func Plan(in PlanInput) ([]Step, error) {
	live := map[string]api.App{}
	for _, a := range in.Live {
		live[a.Metadata.Name] = a
	}
	var steps []Step
	var problems []string
	declared := map[string]bool{}
	for _, d := range in.Desired {
		d = Owned(d, in.Source)
		name := d.Metadata.Name
		declared[name] = true
		cur, ok := live[name]
		if !ok {
			steps = append(steps, Step{Op: OpCreate, Name: name, App: d, Drift: in.SameCommit})
			continue
		}
		switch owner := cur.Metadata.Annotations[api.AnnotationSource]; {
		case owner == in.Source, owner == "" && in.Applied[name]:
		case owner != "" && in.Sources[owner]:
			problems = append(problems, fmt.Sprintf("app %s is owned by source %s: only one source may declare an App (remove it from one of them)", name, owner))
			continue
		case owner != "":
			// Its source was removed: the App is this one's now.
		default:
			problems = append(problems, fmt.Sprintf("app %s exists and no source owns it, so it is left alone: delete it, or annotate it %s=%s to hand it to this source", name, api.AnnotationSource, in.Source))
			continue
		}
		if Same(cur, d) {
			steps = append(steps, Step{Op: OpUnchanged, Name: name})
			continue
		}
		steps = append(steps, Step{Op: OpUpdate, Name: name, App: d, Drift: in.SameCommit})
	}
	if len(problems) > 0 {
		return nil, errdefs.Conflict("%s\nnothing was applied", strings.Join(problems, "\n"))
	}
	if in.Prune {
		for _, a := range in.Live {
			owner := a.Metadata.Annotations[api.AnnotationSource]
			if (owner == in.Source || owner == "" && in.Applied[a.Metadata.Name]) && !declared[a.Metadata.Name] {
				steps = append(steps, Step{Op: OpPrune, Name: a.Metadata.Name})
			}
		}
	}
	sort.SliceStable(steps, func(i, j int) bool {
		pi, pj := steps[i].Op == OpPrune, steps[j].Op == OpPrune
		if pi != pj {
			return pj
		}
		return steps[i].Name < steps[j].Name
	})
	return steps, nil
}

// Owned returns a copy of a marked as owned by source.
func Owned(a api.App, source string) api.App {
	a = app.Clone(a)
	a.Metadata.Annotations = maps.Clone(a.Metadata.Annotations)
	if a.Metadata.Annotations == nil {
		a.Metadata.Annotations = map[string]string{}
	}
	a.Metadata.Annotations[api.AnnotationSource] = source
	return a
}

// Same reports whether the stored App cur already is as desired: the same
// spec (both with defaults), labels and annotations.
func Same(cur, desired api.App) bool {
	d := app.Clone(desired)
	app.SetDefaults(&d)
	return jsonEqual(cur.Spec, d.Spec) && jsonEqual(cur.Metadata.Labels, d.Metadata.Labels) &&
		jsonEqual(cur.Metadata.Annotations, d.Metadata.Annotations)
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
