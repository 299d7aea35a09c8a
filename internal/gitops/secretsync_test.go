package gitops

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestPlanSecrets(t *testing.T) {
	v := func(s string) map[string][]byte { return map[string][]byte{"k": []byte(s)} }
	for _, c := range []struct {
		name    string
		in      SecretPlanInput
		want    string // the steps as "op name[!]" (! for drift)
		wantErr string
	}{
		{"create", SecretPlanInput{Desired: map[string]map[string][]byte{"db": v("1")}}, "created db", ""},
		{"unchanged", SecretPlanInput{Desired: map[string]map[string][]byte{"db": v("1")}, Live: map[string]map[string][]byte{"db": v("1")},
			Exists: map[string]bool{"db": true}, Owned: map[string]bool{"db": true}}, "unchanged db", ""},
		{"update", SecretPlanInput{Desired: map[string]map[string][]byte{"db": v("2")}, Live: map[string]map[string][]byte{"db": v("1")},
			Exists: map[string]bool{"db": true}, Owned: map[string]bool{"db": true}}, "configured db", ""},
		{"hand edit is drift", SecretPlanInput{Desired: map[string]map[string][]byte{"db": v("1")}, Live: map[string]map[string][]byte{"db": v("x")},
			Exists: map[string]bool{"db": true}, Owned: map[string]bool{"db": true}, SameCommit: true}, "configured db!", ""},
		{"prune", SecretPlanInput{Exists: map[string]bool{"old": true}, Owned: map[string]bool{"old": true}, Prune: true}, "pruned old", ""},
		{"no prune", SecretPlanInput{Exists: map[string]bool{"old": true}, Owned: map[string]bool{"old": true}}, "", ""},
		{"made by hand", SecretPlanInput{Desired: map[string]map[string][]byte{"db": v("1")}, Exists: map[string]bool{"db": true}},
			"", "secret db exists and no source owns it"},
		{"another source's", SecretPlanInput{Desired: map[string]map[string][]byte{"db": v("1")}, Exists: map[string]bool{"db": true},
			Others: map[string]string{"db": "other"}}, "", "secret db is owned by source other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			steps, err := PlanSecrets(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, errdefs.ErrConflict) {
					t.Fatalf("err = %v, want a conflict saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range steps {
				mark := ""
				if s.Drift {
					mark = "!"
				}
				got = append(got, fmt.Sprintf("%s %s%s", s.Op, s.Name, mark))
			}
			if g := strings.Join(got, ", "); g != c.want {
				t.Fatalf("steps = %q, want %q", g, c.want)
			}
		})
	}
}
