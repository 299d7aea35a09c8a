package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/store"
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

// fakeSecrets stores secrets in memory and counts writes.
type fakeSecrets struct {
	mu     sync.Mutex
	data   map[string]map[string][]byte
	writes int
}

func (f *fakeSecrets) Reveal(ctx context.Context, name string) (api.SecretValues, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.data[name]
	if !ok {
		return api.SecretValues{}, errdefs.NotFound("secret %s does not exist", name)
	}
	return api.SecretValues{Name: name, Data: d}, nil
}

func (f *fakeSecrets) Create(ctx context.Context, name string, data map[string][]byte) (api.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.data[name]; ok {
		return api.Secret{}, errdefs.Conflict("secret %s exists", name)
	}
	f.data[name] = data
	f.writes++
	return api.Secret{Name: name}, nil
}

func (f *fakeSecrets) Set(ctx context.Context, name string, data map[string][]byte) (api.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[name] = data
	f.writes++
	return api.Secret{Name: name}, nil
}

func (f *fakeSecrets) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.data, name)
	return nil
}

func TestManagerSOPSSecrets(t *testing.T) {
	ctx := context.Background()
	fixture, err := os.ReadFile("testdata/db.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("testdata/age.key")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "age.key")
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	apps, secrets := &fakeApps{}, &fakeSecrets{data: map[string]map[string][]byte{}}
	m := New(Config{Store: st, Apps: apps, Secrets: secrets, AgeKeyFile: keyFile, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(m.Close)
	repo := newTestRepo(t)
	repo.commit("web and db", map[string]string{"deploy/db.yaml": string(fixture), "deploy/web.yaml": appYAML("web", "img:1")})
	if _, err := m.Add(ctx, api.Source{Name: "git", Spec: api.SourceSpec{Git: repo.url(), Path: "deploy", Interval: api.Duration{Duration: time.Hour}}}); err != nil {
		t.Fatal(err)
	}

	s, err := m.Sync(ctx, "git")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.LastResult != api.SourceResultFailed || !strings.Contains(s.Status.LastError, "deploy/db.yaml: cannot be decrypted: the daemon holds no age key") {
		t.Fatalf("a sync without the key: %s %q", s.Status.LastResult, s.Status.LastError)
	}
	if apps.n != 0 || secrets.writes != 0 {
		t.Fatalf("a sync that could not decrypt changed something: %d app applies, %d secret writes", apps.n, secrets.writes)
	}

	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s = syncOK(t, m, "git")
	if string(secrets.data["db"]["password"]) != "s3cret-from-git" || apps.image("web") != "img:1" || !s.Status.Ready {
		t.Fatalf("after a sync with the key: secrets %q, apps %v, ready %v (%s)", secrets.data, apps.apps, s.Status.Ready, s.Status.Message)
	}
	if s.Status.Objects[0].Kind != SecretKind || s.Status.Objects[0].Name != "db" || s.Status.Objects[1].Kind != api.AppKind {
		t.Fatalf("the secret is not the first object: %+v", s.Status.Objects)
	}
	syncOK(t, m, "git")
	if secrets.writes != 1 {
		t.Fatalf("an unchanged secret was written again: %d writes", secrets.writes)
	}

	secrets.Set(ctx, "db", map[string][]byte{"password": []byte("by hand")})
	s = syncOK(t, m, "git")
	if string(secrets.data["db"]["password"]) != "s3cret-from-git" || !slices.Contains(s.Status.Drift, "secret db") {
		t.Fatalf("a hand edit was not reverted as drift: %q, drift %v", secrets.data["db"], s.Status.Drift)
	}

	if _, err := m.Add(ctx, api.Source{Name: "other", Spec: api.SourceSpec{Git: repo.url(), Path: "deploy", Interval: api.Duration{Duration: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Sync(ctx, "other"); !strings.Contains(s.Status.LastError, "secret db is owned by source git") {
		t.Fatalf("a second source declaring the secret: %q", s.Status.LastError)
	}
	m.Delete(ctx, "other")

	repo.commit("no db", map[string]string{"deploy/db.yaml": ""})
	syncOK(t, m, "git")
	if _, ok := secrets.data["db"]; ok {
		t.Fatal("the secret outlived its file")
	}
}
