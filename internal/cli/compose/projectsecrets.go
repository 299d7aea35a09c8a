package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// projectSecretKey is the key of a project secret's value.
const projectSecretKey = "value"

// copiedSecret reports whether the service secret sec of s is copied into
// skiff's secret store as a project secret (see projectSecretName) and
// shown from there, on a tmpfs: a secret from the environment, a file
// secret with a mode, uid or gid, and a file secret whose directory holds
// one of those or a secret of the store (a bind mount cannot share the
// store secrets' tmpfs).
func copiedSecret(p *types.Project, s types.ServiceConfig, sec types.ServiceSecretConfig) bool {
	d, ok := p.Secrets[sec.Source]
	if !ok || storeSecret(d) {
		return false
	}
	if needsCopy(d, sec) {
		return true
	}
	if d.File == "" {
		return false
	}
	dir := path.Dir(secretTarget(sec))
	for _, o := range s.Secrets {
		od, ok := p.Secrets[o.Source]
		if ok && o.Source != sec.Source && path.Dir(secretTarget(o)) == dir && (storeSecret(od) || needsCopy(od, o)) {
			return true
		}
	}
	return false
}

// needsCopy reports whether a secret cannot be shown as a bind mount of
// a file: it comes from the environment or sets its file's ownership.
func needsCopy(d types.SecretConfig, sec types.ServiceSecretConfig) bool {
	return !storeSecret(d) && (d.Environment != "" || sec.Mode != nil || sec.UID != "" || sec.GID != "")
}

// projectSecretPrefix starts the names of project's secrets in the store.
func projectSecretPrefix(project string) string {
	return "compose." + secretLabel(project) + "."
}

// projectSecretName is the store secret holding the compose secret
// source of project: compose.PROJECT.SOURCE, lowercased, every character
// that a secret name refuses as '-'.
func projectSecretName(project, source string) (string, error) {
	label := secretLabel(source)
	name := projectSecretPrefix(project) + label
	if label == "" || api.CheckSecretName(name) != nil {
		return "", errdefs.Invalid("secret %s of project %s cannot be kept in skiff's secret store as %q: rename it with letters and digits", source, project, name)
	}
	return name, nil
}

func secretLabel(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// projectSecretValue reads the value of the compose secret source: its
// file, or its environment variable (from the environment or .env).
func projectSecretValue(p *types.Project, source string, d types.SecretConfig) ([]byte, error) {
	if d.Environment != "" {
		v, ok := p.Environment[d.Environment]
		if !ok {
			return nil, errdefs.NotFound("secret %s comes from the environment variable %s, which is not set: set it, or put it in .env", source, d.Environment)
		}
		return []byte(v), nil
	}
	b, err := os.ReadFile(d.File)
	if err != nil {
		return nil, errdefs.Invalid("secret %s: read its file: %v", source, err)
	}
	return b, nil
}

// copiedSecretMount writes the compose secret sec into skiff's store (a
// new version only when its value changed, once per Engine) and returns
// its mount.
func (e *Engine) copiedSecretMount(ctx context.Context, p *types.Project, service string, sec types.ServiceSecretConfig, d types.SecretConfig) (api.SecretMount, error) {
	name, err := projectSecretName(p.Name, sec.Source)
	if err != nil {
		return api.SecretMount{}, err
	}
	e.mu.Lock()
	version, done := e.copied[name]
	e.mu.Unlock()
	if !done {
		if version, err = e.writeProjectSecret(ctx, p, sec.Source, d, name); err != nil {
			return api.SecretMount{}, err
		}
		e.mu.Lock()
		if e.copied == nil {
			e.copied = map[string]int64{}
		}
		e.copied[name] = version
		e.mu.Unlock()
	}
	return secretMount(service, sec, name, projectSecretKey, version)
}

// writeProjectSecret stores the value of the compose secret source as
// the store secret name, unless it holds that value already, and returns
// the secret's version.
func (e *Engine) writeProjectSecret(ctx context.Context, p *types.Project, source string, d types.SecretConfig, name string) (int64, error) {
	val, err := projectSecretValue(p, source, d)
	if err != nil {
		return 0, err
	}
	data := map[string][]byte{projectSecretKey: val}
	cur, err := e.C.RevealSecret(ctx, name)
	switch {
	case err == nil && len(cur.Data) == 1 && bytes.Equal(cur.Data[projectSecretKey], val):
		return cur.Version, nil
	case err == nil:
		st, err := e.C.SetSecret(ctx, name, data)
		return st.Version, err
	case errors.Is(err, errdefs.ErrNotFound):
		st, err := e.C.CreateSecret(ctx, name, data)
		if err != nil {
			return 0, fmt.Errorf("keep secret %s in skiff's secret store: %w", source, err)
		}
		return st.Version, nil
	}
	return 0, fmt.Errorf("secret %s: %w", source, err)
}

// removeProjectSecrets removes the project's secrets from the store.
func (e *Engine) removeProjectSecrets(ctx context.Context, project string) error {
	all, err := e.C.Secrets(ctx)
	if err != nil {
		return err
	}
	for _, s := range all {
		if !strings.HasPrefix(s.Name, projectSecretPrefix(project)) {
			continue
		}
		if err := e.C.RemoveSecret(ctx, s.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove secret %s: %w", s.Name, err)
		}
		e.progress("Secret %s  Removed", s.Name)
	}
	return nil
}
