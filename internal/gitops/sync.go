package gitops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// testPause names the point where a sync stops for a test to kill the
// daemon (SKIFF_TEST_PAUSE=gitops-apply: after the first App of a sync is
// applied). Unset, as in every real use, it does nothing.
var testPause = os.Getenv("SKIFF_TEST_PAUSE")

const pauseApply = "gitops-apply"

// sync runs one sync of src and returns it with the status recorded.
// Failures are recorded in the status, the events and the history; they
// change no App unless the failure came part way through applying.
func (m *Manager) sync(ctx context.Context, l *loop, src api.Source) api.Source {
	start := m.cfg.Now()
	st := src.Status
	desired, commit, ref, err := m.desired(ctx, l, src.Spec)
	if commit != "" {
		st.LastAttemptedCommit = commit
	}
	var steps []Step
	var secretSteps []SecretStep
	if err == nil {
		steps, secretSteps, err = m.plan(ctx, src, desired, commit)
	}
	if err != nil {
		return m.failed(ctx, l, src, st, commit, start, err, nil)
	}
	drift := append(driftOf(steps), secretDriftOf(secretSteps)...)
	changes := 0
	for _, s := range steps {
		if s.Op != OpUnchanged {
			changes++
		}
	}
	for _, s := range secretSteps {
		if s.Op != OpUnchanged {
			changes++
		}
	}
	if src.Spec.Suspend {
		st.Drift = drift
		m.finish(ctx, src.Name, &st, resultOf(changes, api.SourceResultDrift), start)
		if len(drift) > 0 {
			m.event(ctx, src.Name, api.EventWarning, "DriftDetected", "changed by hand, not reverted while suspended: "+strings.Join(drift, ", "))
		}
		return api.Source{Name: src.Name, Created: src.Created, Spec: src.Spec, Status: st}
	}
	if changes > 0 {
		st.Syncing = commit
		if err := m.cfg.Store.UpdateSourceStatus(ctx, src.Name, st); err != nil {
			return m.failed(ctx, l, src, st, commit, start, err, nil)
		}
	}
	objects, err := m.applyAll(ctx, steps, secretSteps)
	st.Objects = objects
	if err != nil {
		return m.failed(ctx, l, src, st, commit, start, err, objects)
	}
	st.Commit, st.Ref, st.Syncing, st.Drift, st.LastError = commit, ref, "", drift, ""
	result := resultOf(changes, api.SourceResultUnchanged)
	m.finish(ctx, src.Name, &st, result, start)
	l.lastFail = ""
	if len(drift) > 0 {
		m.event(ctx, src.Name, api.EventWarning, "DriftReverted", "changed by hand, reverted to commit "+short(commit)+": "+strings.Join(drift, ", "))
	}
	if changes > 0 {
		msg := fmt.Sprintf("applied commit %s: %s", short(commit), summary(objects))
		m.event(ctx, src.Name, api.EventNormal, "Synced", msg)
		m.history(ctx, src.Name, api.SourceHistoryEntry{Commit: commit, Time: start, Result: result, Duration: m.cfg.Now().Sub(start), Message: msg, Objects: objects})
	}
	return api.Source{Name: src.Name, Created: src.Created, Spec: src.Spec, Status: st}
}

func resultOf(changes int, none string) string {
	if changes > 0 && none != api.SourceResultDrift {
		return api.SourceResultApplied
	}
	if changes > 0 {
		return none
	}
	return api.SourceResultUnchanged
}

// desired returns the Apps of the commit the source's ref points at,
// fetching and loading it only when that commit is new to this loop.
func (m *Manager) desired(ctx context.Context, l *loop, spec api.SourceSpec) (desired Manifests, commit, ref string, err error) {
	cred, err := m.credentials(ctx, spec)
	if err != nil {
		return Manifests{}, "", "", err
	}
	t, err := Resolve(ctx, spec, cred)
	if err != nil {
		return Manifests{}, "", "", err
	}
	ref = t.Ref.String()
	if l.cached != t.Hash || l.commit == "" {
		co, err := Fetch(ctx, spec, cred, t)
		if err != nil {
			return Manifests{}, "", ref, err
		}
		l.cached, l.commit, l.desired = t.Hash, co.Commit.Hash.String(), Manifests{}
		if l.loadErr = VerifyCommit(co.Commit, spec); l.loadErr == nil {
			l.desired, l.loadErr = LoadCommit(co, spec.Path)
		}
	}
	if l.loadErr != nil {
		return Manifests{}, l.commit, ref, fmt.Errorf("commit %s: %w", short(l.commit), l.loadErr)
	}
	return l.desired, l.commit, ref, nil
}

// credentials are what the source's fetches authenticate with.
func (m *Manager) credentials(ctx context.Context, spec api.SourceSpec) (Credentials, error) {
	cred := Credentials{SSHKeyFile: spec.SSHKeyFile, KnownHostsFile: spec.KnownHostsFile, TokenSecret: spec.TokenSecret}
	if spec.CABundle != "" {
		cred.CABundle = []byte(spec.CABundle)
	}
	if spec.TokenSecret != "" {
		tok, err := m.secretValue(ctx, spec.TokenSecret)
		if err != nil {
			return Credentials{}, fmt.Errorf("the --token-secret: %w", err)
		}
		cred.Token = string(tok)
	}
	return cred, nil
}

// plan lists the Apps, secrets and sources and makes the sync's steps:
// the Apps' and the secrets'. Every secret file is decrypted here, so one
// that cannot be fails the sync before anything changes.
func (m *Manager) plan(ctx context.Context, src api.Source, manifests Manifests, commit string) ([]Step, []SecretStep, error) {
	desired := manifests.Apps
	live, err := m.cfg.Apps.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := m.cfg.Store.ListSources(ctx)
	if err != nil {
		return nil, nil, err
	}
	sameCommit := commit == src.Status.Commit && src.Status.Syncing == ""
	secretSteps, err := m.planSecrets(ctx, src, manifests.Secrets, srcs, sameCommit)
	if err != nil {
		return nil, nil, fmt.Errorf("commit %s: %w", short(commit), err)
	}
	names := map[string]bool{}
	for _, s := range srcs {
		names[s.Name] = true
	}
	if m.cfg.Admit != nil {
		for _, a := range desired {
			if err := m.cfg.Admit(a); err != nil {
				return nil, nil, fmt.Errorf("commit %s: app %s: %w: nothing was applied", short(commit), a.Metadata.Name, err)
			}
		}
	}
	applied := map[string]bool{}
	for _, o := range src.Status.Objects {
		if o.Kind != SecretKind && o.Action != string(OpPrune) {
			applied[o.Name] = true
		}
	}
	steps, err := Plan(PlanInput{Source: src.Name, Desired: desired, Live: live, Sources: names, Applied: applied,
		Prune: prune(src.Spec), SameCommit: sameCommit})
	if err != nil {
		return nil, nil, fmt.Errorf("commit %s: %w", short(commit), err)
	}
	return steps, secretSteps, nil
}

// apply carries the steps out in order, stopping at the first failure;
// the objects list every step with what was done.
func (m *Manager) apply(ctx context.Context, steps []Step) ([]api.SourceObject, error) {
	objects := make([]api.SourceObject, len(steps))
	for i, s := range steps {
		objects[i] = api.SourceObject{Kind: api.AppKind, Name: s.Name, Action: string(s.Op)}
	}
	applied := 0
	for i, s := range steps {
		var err error
		switch s.Op {
		case OpCreate, OpUpdate:
			_, err = m.cfg.Apps.Apply(ctx, s.App)
		case OpPrune:
			err = m.cfg.Apps.Delete(ctx, s.Name)
			if errors.Is(err, errdefs.ErrNotFound) {
				err = nil
			}
		default:
			continue
		}
		if err != nil {
			objects[i].Action, objects[i].Message = "failed", err.Error()
			return objects, fmt.Errorf("app %s: %w", s.Name, err)
		}
		applied++
		if applied == 1 && testPause == pauseApply {
			m.log.Warn("paused for a test (SKIFF_TEST_PAUSE)", "point", pauseApply, "app", s.Name)
			<-ctx.Done()
			return objects, ctx.Err()
		}
	}
	return objects, nil
}

// failed records a failed sync: the status keeps the last good commit.
func (m *Manager) failed(ctx context.Context, l *loop, src api.Source, st api.SourceStatus, commit string, start time.Time, err error, objects []api.SourceObject) api.Source {
	if ctx.Err() != nil {
		return src // stopping: the next start syncs again
	}
	st.LastError = err.Error()
	m.finish(ctx, src.Name, &st, api.SourceResultFailed, start)
	key := commit + "\x00" + err.Error()
	if l.lastFail != key {
		l.lastFail = key
		m.event(ctx, src.Name, api.EventWarning, "SyncFailed", err.Error())
		m.history(ctx, src.Name, api.SourceHistoryEntry{Commit: commit, Time: start, Result: api.SourceResultFailed,
			Duration: m.cfg.Now().Sub(start), Message: err.Error(), Objects: objects})
	}
	m.log.Warn("sync failed", "source", src.Name, "commit", short(commit), "err", err)
	return api.Source{Name: src.Name, Created: src.Created, Spec: src.Spec, Status: st}
}

// finish records the status of a sync that ended with result.
func (m *Manager) finish(ctx context.Context, name string, st *api.SourceStatus, result string, start time.Time) {
	st.LastSync, st.LastResult = m.cfg.Now().UTC(), result
	if result != api.SourceResultFailed {
		st.LastError = ""
	}
	if err := m.cfg.Store.UpdateSourceStatus(context.WithoutCancel(ctx), name, *st); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		m.log.Warn("record a source's status", "source", name, "err", err)
	}
}

func (m *Manager) history(ctx context.Context, name string, e api.SourceHistoryEntry) {
	if err := m.cfg.Store.AddSourceHistory(context.WithoutCancel(ctx), name, e); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		m.log.Warn("record a source's history", "source", name, "err", err)
	}
}

func driftOf(steps []Step) []string {
	var out []string
	for _, s := range steps {
		if s.Drift {
			out = append(out, s.Name)
		}
	}
	return out
}

// summary counts the objects by action: "1 created, 2 unchanged".
func summary(objects []api.SourceObject) string {
	counts := map[string]int{}
	for _, o := range objects {
		counts[o.Action]++
	}
	var parts []string
	for _, a := range []string{string(OpCreate), string(OpUpdate), string(OpPrune), string(OpUnchanged), "failed"} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	return strings.Join(parts, ", ")
}
