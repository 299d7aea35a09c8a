package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// SecretStep is one secret of a sync.
type SecretStep struct {
	Op   Op
	Name string
	// Data is the decrypted content, for creates and updates.
	Data map[string][]byte
	// Drift is set when the secret was changed by hand since the source
	// applied the same commit.
	Drift bool
}

// SecretPlanInput is everything a secret plan is made from.
type SecretPlanInput struct {
	// Desired are the decrypted secrets of the commit, by name.
	Desired map[string]map[string][]byte
	// Live are the current values of the secrets stored now that the
	// commit declares or the source owns, by name.
	Live map[string]map[string][]byte
	// Exists names every secret stored now.
	Exists map[string]bool
	// Owned names the secrets the source applied; Others those other
	// sources applied, with the owner.
	Owned  map[string]bool
	Others map[string]string
	Prune  bool
	// SameCommit is set when the commit is the one last applied.
	SameCommit bool
}

// PlanSecrets returns the steps that make the secrets the source owns
// match its commit, creates and updates first, then prunes, each by name.
// A declared secret that exists and the source does not own (another
// source's, or made by hand) fails the whole plan (ErrConflict). Like
// Plan it is pure.
func PlanSecrets(in SecretPlanInput) ([]SecretStep, error) {
	var steps []SecretStep
	var problems []string
	for _, name := range sortedKeys(in.Desired) {
		data := in.Desired[name]
		switch {
		case !in.Exists[name]:
			steps = append(steps, SecretStep{Op: OpCreate, Name: name, Data: data, Drift: in.SameCommit && in.Owned[name]})
		case in.Owned[name]:
			if maps.EqualFunc(in.Live[name], data, bytes.Equal) {
				steps = append(steps, SecretStep{Op: OpUnchanged, Name: name})
			} else {
				steps = append(steps, SecretStep{Op: OpUpdate, Name: name, Data: data, Drift: in.SameCommit})
			}
		case in.Others[name] != "":
			problems = append(problems, fmt.Sprintf("secret %s is owned by source %s: only one source may declare a secret (remove it from one of them)", name, in.Others[name]))
		default:
			problems = append(problems, fmt.Sprintf("secret %s exists and no source owns it, so it is left alone: delete it (skiff secret rm %s) to hand it to this source", name, name))
		}
	}
	if len(problems) > 0 {
		return nil, errdefs.Conflict("%s\nnothing was applied", strings.Join(problems, "\n"))
	}
	if in.Prune {
		for _, name := range sortedKeys(in.Owned) {
			if _, ok := in.Desired[name]; !ok && in.Exists[name] {
				steps = append(steps, SecretStep{Op: OpPrune, Name: name})
			}
		}
	}
	return steps, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// decryptSecrets decrypts every Secret file of a commit with the daemon's
// age keys. Any file that fails fails them all, each named.
func (m *Manager) decryptSecrets(files []SecretFile) (map[string]map[string][]byte, error) {
	if len(files) == 0 {
		return nil, nil
	}
	ids, err := ReadAgeKeys(m.cfg.AgeKeyFile)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]byte{}
	from := map[string]string{}
	var errs []error
	for _, f := range files {
		name, data, err := Decrypt(f, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := from[name]; ok {
			errs = append(errs, errdefs.Invalid("%s: secret %s is declared by %s too: declare each secret once", f.Name, name, prev))
			continue
		}
		from[name], out[name] = f.Name, data
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w\nnothing was applied", errors.Join(errs...))
	}
	return out, nil
}

// planSecrets decrypts the commit's secrets and plans them against the
// secrets stored and the ones each source applied.
func (m *Manager) planSecrets(ctx context.Context, src api.Source, files []SecretFile, srcs []api.Source, sameCommit bool) ([]SecretStep, error) {
	desired, err := m.decryptSecrets(files)
	if err != nil {
		return nil, err
	}
	in := SecretPlanInput{Desired: desired, Live: map[string]map[string][]byte{}, Exists: map[string]bool{},
		Owned: map[string]bool{}, Others: map[string]string{}, Prune: prune(src.Spec), SameCommit: sameCommit}
	for _, s := range srcs {
		for _, o := range s.Status.Objects {
			if o.Kind != SecretKind || o.Action == string(OpPrune) || o.Action == "failed" && s.Name != src.Name {
				continue
			}
			if s.Name == src.Name {
				in.Owned[o.Name] = true
			} else {
				in.Others[o.Name] = s.Name
			}
		}
	}
	if len(desired) == 0 && len(in.Owned) == 0 {
		return nil, nil
	}
	if m.cfg.Secrets == nil {
		return nil, errdefs.Invalid("the commit declares secrets and this daemon keeps no secrets")
	}
	look := maps.Clone(in.Owned)
	for name := range desired {
		look[name] = true
	}
	for name := range look {
		v, err := m.cfg.Secrets.Reveal(ctx, name)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", name, err)
		}
		in.Exists[name], in.Live[name] = true, v.Data
	}
	return PlanSecrets(in)
}

// applyAll applies a sync: the secrets' creates and updates first, as
// Apps may use them, then the Apps' steps, then the secrets' prunes, once
// no pruned App uses them. It stops at the first failure; the objects
// list every step, with what was done or was to be done.
func (m *Manager) applyAll(ctx context.Context, steps []Step, secretSteps []SecretStep) ([]api.SourceObject, error) {
	var writes, prunes []SecretStep
	for _, s := range secretSteps {
		if s.Op == OpPrune {
			prunes = append(prunes, s)
		} else {
			writes = append(writes, s)
		}
	}
	objects := make([]api.SourceObject, 0, len(steps)+len(secretSteps))
	for _, s := range writes {
		objects = append(objects, api.SourceObject{Kind: SecretKind, Name: s.Name, Action: string(s.Op)})
	}
	for _, s := range steps {
		objects = append(objects, api.SourceObject{Kind: api.AppKind, Name: s.Name, Action: string(s.Op)})
	}
	for _, s := range prunes {
		objects = append(objects, api.SourceObject{Kind: SecretKind, Name: s.Name, Action: string(s.Op)})
	}
	for i, s := range writes {
		if err := m.applySecret(ctx, s, &objects[i]); err != nil {
			return objects, err
		}
	}
	appObjects, err := m.apply(ctx, steps)
	copy(objects[len(writes):], appObjects)
	if err != nil {
		return objects, err
	}
	for i, s := range prunes {
		if err := m.applySecret(ctx, s, &objects[len(writes)+len(steps)+i]); err != nil {
			return objects, err
		}
	}
	return objects, nil
}

// applySecret carries out one secret step, recording a failure in o.
func (m *Manager) applySecret(ctx context.Context, s SecretStep, o *api.SourceObject) error {
	var err error
	switch s.Op {
	case OpCreate:
		_, err = m.cfg.Secrets.Create(ctx, s.Name, s.Data)
	case OpUpdate:
		_, err = m.cfg.Secrets.Set(ctx, s.Name, s.Data)
	case OpPrune:
		if err = m.cfg.Secrets.Delete(ctx, s.Name); errors.Is(err, errdefs.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		o.Action, o.Message = "failed", err.Error()
		return fmt.Errorf("secret %s: %w", s.Name, err)
	}
	return nil
}

func secretDriftOf(steps []SecretStep) []string {
	var out []string
	for _, s := range steps {
		if s.Drift {
			out = append(out, "secret "+s.Name)
		}
	}
	return out
}
