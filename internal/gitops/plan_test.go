package gitops

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

func mkApp(name, image, owner string) api.App {
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind, Metadata: api.ObjectMeta{Name: name}, Spec: api.AppSpec{Image: image}}
	app.SetDefaults(&a)
	if owner != "" {
		a.Metadata.Annotations = map[string]string{api.AnnotationSource: owner}
	}
	return a
}

func TestPlan(t *testing.T) {
	sources := map[string]bool{"git": true, "other": true}
	tests := []struct {
		name    string
		desired []api.App
		live    []api.App
		prune   bool
		same    bool
		applied bool   // a was applied by the last sync
		want    string // "op name[!]" per step, "!" for drift
		wantErr string
	}{
		{name: "first sync creates", desired: []api.App{mkApp("b", "x:1", ""), mkApp("a", "x:1", "")},
			want: "created a,created b"},
		{name: "changed image updates", desired: []api.App{mkApp("a", "x:2", "")}, live: []api.App{mkApp("a", "x:1", "git")},
			want: "configured a"},
		{name: "same is unchanged", desired: []api.App{mkApp("a", "x:1", "")}, live: []api.App{mkApp("a", "x:1", "git")},
			want: "unchanged a"},
		{name: "hand edit at the same commit is drift", desired: []api.App{mkApp("a", "x:1", "")}, live: []api.App{mkApp("a", "x:9", "git")}, same: true,
			want: "configured a!"},
		{name: "deleted by hand is drift", desired: []api.App{mkApp("a", "x:1", "")}, same: true, want: "created a!"},
		{name: "no longer declared is pruned last", desired: []api.App{mkApp("b", "x:1", "")}, live: []api.App{mkApp("a", "x:1", "git"), mkApp("b", "x:1", "git")}, prune: true,
			want: "unchanged b,pruned a"},
		{name: "no prune keeps", desired: []api.App{mkApp("b", "x:1", "")}, live: []api.App{mkApp("a", "x:1", "git")}, want: "created b"},
		{name: "unowned apps are never touched", desired: nil, live: []api.App{mkApp("hand", "x:1", ""), mkApp("theirs", "x:1", "other")}, prune: true, want: ""},
		{name: "owned by another source", desired: []api.App{mkApp("a", "x:1", ""), mkApp("c", "x:1", "")}, live: []api.App{mkApp("a", "x:1", "other")},
			wantErr: "app a is owned by source other"},
		{name: "owned by nobody", desired: []api.App{mkApp("a", "x:1", "")}, live: []api.App{mkApp("a", "x:1", "")},
			wantErr: "app a exists and no source owns it"},
		{name: "applied by hand, losing the annotation, is still owned", desired: []api.App{mkApp("a", "x:1", "")}, live: []api.App{mkApp("a", "x:9", "")}, applied: true, same: true,
			want: "configured a!"},
		{name: "lost annotation and no longer declared is pruned", live: []api.App{mkApp("a", "x:1", "")}, applied: true, prune: true, want: "pruned a"},
		{name: "owner gone is adopted", desired: []api.App{mkApp("a", "x:1", "")}, live: []api.App{mkApp("a", "x:1", "gone")},
			want: "configured a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := Plan(PlanInput{Source: "git", Desired: tc.desired, Live: tc.live, Sources: sources, Prune: tc.prune, SameCommit: tc.same, Applied: map[string]bool{"a": tc.applied}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrConflict) {
					t.Fatalf("err = %v, want a conflict with %q", err, tc.wantErr)
				}
				if steps != nil {
					t.Fatalf("a failed plan has steps: %v", steps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range steps {
				g := string(s.Op) + " " + s.Name
				if s.Drift {
					g += "!"
				}
				got = append(got, g)
				if (s.Op == OpCreate || s.Op == OpUpdate) && s.App.Metadata.Annotations[api.AnnotationSource] != "git" {
					t.Errorf("%s is applied without its owner annotation", s.Name)
				}
			}
			if g := strings.Join(got, ","); g != tc.want {
				t.Fatalf("steps = %q, want %q", g, tc.want)
			}
		})
	}
}
