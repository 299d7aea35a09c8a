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

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/store"
)

// testRepo is a git repository on disk the tests commit to.
type testRepo struct {
	t   *testing.T
	dir string
	r   *git.Repository
}

func newTestRepo(t *testing.T) *testRepo {
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, r: r}
}

func (tr *testRepo) url() string { return "file://" + tr.dir }

// commit writes files (an empty content deletes one) and commits them.
func (tr *testRepo) commit(msg string, files map[string]string) string {
	tr.t.Helper()
	for name, content := range files {
		p := filepath.Join(tr.dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tr.t.Fatal(err)
		}
	}
	wt, err := tr.r.Worktree()
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		tr.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		tr.t.Fatal(err)
	}
	return h.String()
}

func appYAML(name, image string) string {
	return "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: " + name + "}\nspec:\n  image: " + image + "\n"
}

// fakeApps stores Apps in memory, as the controller would (with
// defaults); they are Ready at once.
type fakeApps struct {
	mu   sync.Mutex
	apps map[string]api.App
	n    int
}

func (f *fakeApps) Apply(ctx context.Context, a api.App) (api.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps == nil {
		f.apps = map[string]api.App{}
	}
	f.n++
	a.Status = api.AppStatus{}
	app.MarkReady(&a.Status, time.Now())
	f.apps[a.Metadata.Name] = a
	return a, nil
}

func (f *fakeApps) List(ctx context.Context) ([]api.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.App
	for _, a := range f.apps {
		out = append(out, a)
	}
	return out, nil
}

func (f *fakeApps) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[name]; !ok {
		return errdefs.NotFound("no app %s", name)
	}
	delete(f.apps, name)
	return nil
}

func (f *fakeApps) image(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.apps[name]
	if !ok {
		return ""
	}
	return a.Spec.Image
}

func newTestManager(t *testing.T) (*Manager, *fakeApps, *store.Store) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	apps := &fakeApps{}
	m := New(Config{Store: st, Apps: apps, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(m.Close)
	return m, apps, st
}

func syncOK(t *testing.T, m *Manager, name string) api.Source {
	t.Helper()
	s, err := m.Sync(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.LastResult == api.SourceResultFailed {
		t.Fatalf("sync failed: %s", s.Status.LastError)
	}
	return s
}

func TestManagerSyncLifecycle(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	c1 := repo.commit("first", map[string]string{"deploy/a.yaml": appYAML("a", "img:1"), "deploy/b.yaml": appYAML("b", "img:1"), "README.md": "not an app"})
	m, apps, st := newTestManager(t)
	if _, err := m.Add(ctx, api.Source{Name: "git", Spec: api.SourceSpec{Git: repo.url(), Path: "deploy", Interval: api.Duration{Duration: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	s := syncOK(t, m, "git")
	if s.Status.Commit != c1 || apps.image("a") != "img:1" || apps.image("b") != "img:1" {
		t.Fatalf("first sync: commit %s (want %s), apps %v", s.Status.Commit, c1, apps.apps)
	}
	if !s.Status.Ready {
		t.Fatalf("source not Ready with every App Ready: %s", s.Status.Message)
	}
	if apps.apps["a"].Metadata.Annotations[api.AnnotationSource] != "git" {
		t.Fatal("applied App does not name its source")
	}

	t.Run("a changed image is applied", func(t *testing.T) {
		c2 := repo.commit("bump", map[string]string{"deploy/a.yaml": appYAML("a", "img:2")})
		s := syncOK(t, m, "git")
		if s.Status.Commit != c2 || apps.image("a") != "img:2" {
			t.Fatalf("commit %s, image %s", s.Status.Commit, apps.image("a"))
		}
	})
	t.Run("a bad file fails the sync and changes nothing", func(t *testing.T) {
		good := syncOK(t, m, "git").Status.Commit
		before := apps.n
		repo.commit("bad", map[string]string{"deploy/a.yaml": appYAML("a", "img:3"), "deploy/c.yaml": appYAML("c", "img:1") + "  port: 99999\n"})
		s, err := m.Sync(ctx, "git")
		if err != nil {
			t.Fatal(err)
		}
		if s.Status.LastResult != api.SourceResultFailed || !strings.Contains(s.Status.LastError, "deploy/c.yaml: line 6: spec.port") {
			t.Fatalf("result %s, error %q: want a failure naming deploy/c.yaml, line 6 and spec.port", s.Status.LastResult, s.Status.LastError)
		}
		if apps.n != before || apps.image("a") != "img:2" || s.Status.Commit != good || s.Status.Ready {
			t.Fatalf("a failed sync changed something: %d applies (was %d), image %s, commit %s", apps.n, before, apps.image("a"), s.Status.Commit)
		}
		repo.commit("fix", map[string]string{"deploy/c.yaml": appYAML("c", "img:1")})
		syncOK(t, m, "git")
		if apps.image("a") != "img:3" || apps.image("c") != "img:1" {
			t.Fatalf("the fixed commit was not applied: %v", apps.apps)
		}
	})
	t.Run("a deleted file prunes", func(t *testing.T) {
		repo.commit("rm b", map[string]string{"deploy/b.yaml": ""})
		s := syncOK(t, m, "git")
		if apps.image("b") != "" {
			t.Fatal("b was not pruned")
		}
		if !slices.ContainsFunc(s.Status.Objects, func(o api.SourceObject) bool { return o.Name == "b" && o.Action == "pruned" }) {
			t.Fatalf("objects do not report b pruned: %+v", s.Status.Objects)
		}
	})
	t.Run("a hand edit is reverted, or only reported while suspended", func(t *testing.T) {
		edited := apps.apps["a"]
		edited.Spec.Image = "by-hand"
		apps.Apply(ctx, edited)
		if _, err := m.SetSuspend(ctx, "git", true); err != nil {
			t.Fatal(err)
		}
		s := syncOK(t, m, "git")
		if apps.image("a") != "by-hand" || !slices.Contains(s.Status.Drift, "a") {
			t.Fatalf("suspended: image %s, drift %v", apps.image("a"), s.Status.Drift)
		}
		if _, err := m.SetSuspend(ctx, "git", false); err != nil {
			t.Fatal(err)
		}
		syncOK(t, m, "git")
		if apps.image("a") != "img:3" {
			t.Fatalf("drift not reverted: image %s", apps.image("a"))
		}
		evs, _ := st.ListEvents(ctx, store.EventFilter{Kind: api.EventKindSource, Name: "git"})
		if !slices.ContainsFunc(evs, func(e api.Event) bool { return e.Reason == "DriftReverted" }) {
			t.Fatalf("no DriftReverted event: %+v", evs)
		}
	})
	t.Run("history", func(t *testing.T) {
		h, err := m.History(ctx, "git")
		if err != nil {
			t.Fatal(err)
		}
		var results []string
		for _, e := range h {
			results = append(results, e.Result)
		}
		// Newest first: drift reverted, prune, fix, bad, bump, first.
		if want := "Applied Applied Applied Failed Applied Applied"; strings.Join(results, " ") != want {
			t.Fatalf("history results %v, want %s", results, want)
		}
		if h[len(h)-1].Commit != c1 {
			t.Fatalf("oldest entry is commit %s, want %s", h[len(h)-1].Commit, c1)
		}
	})
}

func TestManagerOwnership(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.commit("first", map[string]string{"a.yaml": appYAML("a", "img:1")})
	m, apps, _ := newTestManager(t)
	apps.Apply(ctx, mkApp("a", "by-hand", ""))
	if _, err := m.Add(ctx, api.Source{Name: "one", Spec: api.SourceSpec{Git: repo.url(), Interval: api.Duration{Duration: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Sync(ctx, "one")
	if s.Status.LastResult != api.SourceResultFailed || !strings.Contains(s.Status.LastError, "no source owns it") || apps.image("a") != "by-hand" {
		t.Fatalf("an App no source owns was touched: %s %q %s", s.Status.LastResult, s.Status.LastError, apps.image("a"))
	}
	apps.Delete(ctx, "a")
	syncOK(t, m, "one")
	if _, err := m.Add(ctx, api.Source{Name: "two", Spec: api.SourceSpec{Git: repo.url(), Interval: api.Duration{Duration: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	s, _ = m.Sync(ctx, "two")
	if s.Status.LastResult != api.SourceResultFailed || !strings.Contains(s.Status.LastError, "owned by source one") {
		t.Fatalf("a second source claiming an App: %s %q", s.Status.LastResult, s.Status.LastError)
	}
}

func TestResolveRefs(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	c1 := repo.commit("one", map[string]string{"a.yaml": appYAML("a", "img:1")})
	for _, tag := range []string{"v1.0.0", "v1.2.0"} {
		if _, err := repo.r.CreateTag(tag, mustHash(t, c1), nil); err != nil {
			t.Fatal(err)
		}
	}
	c2 := repo.commit("two", map[string]string{"a.yaml": appYAML("a", "img:2")})
	if _, err := repo.r.CreateTag("v2.0.0", mustHash(t, c2), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec api.SourceSpec
		ref  string
	}{
		{api.SourceSpec{}, "refs/heads/master"},
		{api.SourceSpec{Branch: "master"}, "refs/heads/master"},
		{api.SourceSpec{Tag: "v1.0.0"}, "refs/tags/v1.0.0"},
		{api.SourceSpec{Semver: "^1"}, "refs/tags/v1.2.0"},
		{api.SourceSpec{Semver: ">=1"}, "refs/tags/v2.0.0"},
	}
	for _, tc := range tests {
		tc.spec.Git = repo.url()
		tgt, err := Resolve(ctx, tc.spec, Credentials{})
		if err != nil {
			t.Fatalf("%+v: %v", tc.spec, err)
		}
		if tgt.Ref.String() != tc.ref {
			t.Fatalf("%+v: ref %s, want %s", tc.spec, tgt.Ref, tc.ref)
		}
	}
	tgt, _ := Resolve(ctx, api.SourceSpec{Git: repo.url(), Semver: "^1"}, Credentials{})
	co, err := Fetch(ctx, api.SourceSpec{Git: repo.url()}, Credentials{}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := LoadTree(co, "")
	if err != nil || len(apps) != 1 || apps[0].Spec.Image != "img:1" {
		t.Fatalf("tag v1.2.0 loads %v, %v; want image img:1", apps, err)
	}
	if _, err := Resolve(ctx, api.SourceSpec{Git: repo.url(), Semver: "^3"}, Credentials{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a range no tag matches: %v", err)
	}
}

func TestCheckSource(t *testing.T) {
	bad := map[string]api.Source{
		"name":      {Name: "Bad_Name", Spec: api.SourceSpec{Git: "file:///x"}},
		"no url":    {Name: "a"},
		"two refs":  {Name: "a", Spec: api.SourceSpec{Git: "file:///x", Branch: "main", Tag: "v1"}},
		"semver":    {Name: "a", Spec: api.SourceSpec{Git: "file:///x", Semver: "not a range"}},
		"path":      {Name: "a", Spec: api.SourceSpec{Git: "file:///x", Path: "../etc"}},
		"interval":  {Name: "a", Spec: api.SourceSpec{Git: "file:///x", Interval: api.Duration{Duration: time.Millisecond}}},
		"ssh key":   {Name: "a", Spec: api.SourceSpec{Git: "ssh://git@example.com/x.git"}},
		"protocol":  {Name: "a", Spec: api.SourceSpec{Git: "ftp://example.com/x"}},
		"ca bundle": {Name: "a", Spec: api.SourceSpec{Git: "https://example.com/x.git", CABundle: "not pem"}},
		"ca http":   {Name: "a", Spec: api.SourceSpec{Git: "http://example.com/x.git", CABundle: testCAPEM}},
	}
	for name, s := range bad {
		if err := CheckSource(s); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if err := CheckSource(api.Source{Name: "ok", Spec: api.SourceSpec{Git: "https://example.com/x.git", Path: "deploy/prod", Semver: ">=1.0.0 <2", CABundle: testCAPEM}}); err != nil {
		t.Fatal(err)
	}
}

func mustHash(t *testing.T, s string) plumbing.Hash {
	h := plumbing.NewHash(s)
	if h.IsZero() {
		t.Fatalf("bad hash %q", s)
	}
	return h
}

func TestManagerDiffChangesNothing(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.commit("first", map[string]string{"a.yaml": appYAML("a", "img:1"), "b.yaml": appYAML("b", "img:1")})
	m, apps, _ := newTestManager(t)
	if _, err := m.Add(ctx, api.Source{Name: "git", Spec: api.SourceSpec{Git: repo.url(), Interval: api.Duration{Duration: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, m, "git")
	c2 := repo.commit("bump a, add c", map[string]string{"a.yaml": appYAML("a", "img:2"), "c.yaml": appYAML("c", "img:1")})
	before := apps.n
	d, err := m.Diff(ctx, "git")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.SourceObject{}
	for _, o := range d.Objects {
		got[o.Name] = o
	}
	if d.Commit != c2 || got["a"].Action != "configured" || !strings.Contains(got["a"].Diff, "+  image: img:2") ||
		got["b"].Action != "unchanged" || got["c"].Action != "created" || !strings.Contains(got["c"].Diff, "+  image: img:1") {
		t.Fatalf("diff: %+v", d)
	}
	if apps.n != before || apps.image("a") != "img:1" || apps.image("c") != "" {
		t.Fatal("diff changed Apps")
	}
	repo.commit("bad", map[string]string{"c.yaml": appYAML("c", "img:1") + "  bogus: 1\n"})
	if _, err := m.Diff(ctx, "git"); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Fatalf("diff of a bad commit: %v", err)
	}
}

// TestSyncRunsOnce checks that a sync asked for just as a source's loop
// starts its first sync runs once: the wake-up it leaves is covered by
// the sync that answers it, and no second sync follows on its own.
func TestSyncRunsOnce(t *testing.T) {
	ctx := context.Background()
	repo := newTestRepo(t)
	repo.commit("first", map[string]string{"README.md": "nothing yet\n"})
	m, _, st := newTestManager(t)
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("once-%d", i)
		if _, err := m.Add(ctx, api.Source{Name: name, Spec: api.SourceSpec{Git: repo.url(), Interval: api.Duration{Duration: time.Hour}}}); err != nil {
			t.Fatal(err)
		}
		s := syncOK(t, m, name)
		time.Sleep(30 * time.Millisecond)
		after, err := st.GetSource(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !after.Status.LastSync.Equal(s.Status.LastSync) {
			t.Fatalf("source %s synced again on its own after the sync asked for (at %s, then %s)", name, s.Status.LastSync, after.Status.LastSync)
		}
	}
}
