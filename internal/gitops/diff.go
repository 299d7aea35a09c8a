package gitops

import (
	"context"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
)

// Diff fetches the commit a source's ref points at now, checks it as a
// sync would, and returns what a sync would do, with the diff of each App
// it would create or change; it changes nothing. A commit a sync would
// refuse (a bad file, an unsigned commit, an App another source owns) is
// the same error as the sync's.
func (m *Manager) Diff(ctx context.Context, name string) (api.SourceDiff, error) {
	src, err := m.cfg.Store.GetSource(ctx, name)
	if err != nil {
		return api.SourceDiff{}, err
	}
	cred, err := m.credentials(ctx, src.Spec)
	if err != nil {
		return api.SourceDiff{}, err
	}
	t, err := Resolve(ctx, src.Spec, cred)
	if err != nil {
		return api.SourceDiff{}, err
	}
	co, err := Fetch(ctx, src.Spec, cred, t)
	if err != nil {
		return api.SourceDiff{}, err
	}
	if err := VerifyCommit(co.Commit, src.Spec); err != nil {
		return api.SourceDiff{}, err
	}
	desired, err := LoadCommit(co, src.Spec.Path)
	if err != nil {
		return api.SourceDiff{}, err
	}
	commit := co.Commit.Hash.String()
	steps, secretSteps, err := m.plan(ctx, src, desired, commit)
	if err != nil {
		return api.SourceDiff{}, err
	}
	live, err := m.liveApps(ctx)
	if err != nil {
		return api.SourceDiff{}, err
	}
	out := api.SourceDiff{Source: name, Commit: commit, Ref: t.Ref.String()}
	for _, s := range steps {
		o := api.SourceObject{Kind: api.AppKind, Name: s.Name, Action: string(s.Op)}
		switch s.Op {
		case OpCreate:
			o.Diff = app.Diff(api.App{}, s.App)
		case OpUpdate:
			o.Diff = app.Diff(live[s.Name], s.App)
		}
		if s.Drift {
			o.Message = "changed by hand since the source applied it"
		}
		out.Objects = append(out.Objects, o)
	}
	for _, s := range secretSteps {
		o := api.SourceObject{Kind: SecretKind, Name: s.Name, Action: string(s.Op)}
		if s.Drift {
			o.Message = "changed by hand since the source applied it"
		}
		out.Objects = append(out.Objects, o) // values are never shown
	}
	return out, nil
}
