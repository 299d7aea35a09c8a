package identity

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"skiff.dev/skiff/internal/fsutil"
)

// MountPath is where a replica finds its token: MountPath/TokenFile.
const (
	MountPath = "/run/secrets/skiff.dev/identity"
	TokenFile = "token"
)

// grant is what a replica's token says, kept beside its directory.
type grant struct {
	App       string    `json:"app"`
	Revision  string    `json:"revision"`
	Replica   string    `json:"replica"`
	Audiences []string  `json:"audiences,omitempty"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires"`
}

// Replicas keeps the token files of replicas: each replica's directory
// (bind-mounted read-only at MountPath) holds its current token, which
// Run replaces, by an atomic rename, when 80% of its lifetime has
// passed. It is safe for concurrent use.
type Replicas struct {
	is  *Issuer
	dir string
	ttl time.Duration
	log *slog.Logger

	mu     sync.Mutex
	grants map[string]*grant // by replica name
}

// NewReplicas keeps the token files under dir, signed by is for ttl,
// taking back the grants a previous daemon left there.
func NewReplicas(is *Issuer, dir string, ttl time.Duration, log *slog.Logger) (*Replicas, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	r := &Replicas{is: is, dir: dir, ttl: ttl, log: log, grants: map[string]*grant{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		var g grant
		if err == nil {
			err = json.Unmarshal(b, &g)
		}
		if err != nil || g.Replica != name {
			log.Warn("identity: dropping an unreadable replica grant", "file", e.Name(), "err", err)
			r.remove(name)
			continue
		}
		r.grants[name] = &g
	}
	return r, nil
}

// Issue gives replica of app's revision a token and returns the host
// directory to mount at MountPath.
func (r *Replicas) Issue(app, revision, replica string, audiences []string) (string, error) {
	g := &grant{App: app, Revision: revision, Replica: replica, Audiences: audiences}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.writeLocked(g, time.Now()); err != nil {
		r.remove(replica)
		return "", err
	}
	r.grants[replica] = g
	return r.tokenDir(replica), nil
}

func (r *Replicas) tokenDir(replica string) string { return filepath.Join(r.dir, replica) }

// writeLocked signs a new token for g and writes it, then g itself.
func (r *Replicas) writeLocked(g *grant, now time.Time) error {
	tok, exp, err := r.is.Sign(g.App, g.Revision, g.Replica, g.Audiences, now, r.ttl)
	if err != nil {
		return err
	}
	dir := r.tokenDir(g.Replica)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Readable by the container's user, whichever it is.
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, TokenFile), []byte(tok), 0o444, false); err != nil {
		return err
	}
	g.Issued, g.Expires = now, exp
	b, _ := json.Marshal(g)
	return fsutil.WriteFileAtomic(filepath.Join(r.dir, g.Replica+".json"), b, 0o600, false)
}

// Forget removes replica's token.
func (r *Replicas) Forget(replica string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.grants, replica)
	r.remove(replica)
}

func (r *Replicas) remove(replica string) {
	os.RemoveAll(r.tokenDir(replica))
	os.Remove(filepath.Join(r.dir, replica+".json"))
}

// Prune forgets the replicas exists says are gone (removed while no
// daemon ran).
func (r *Replicas) Prune(exists func(replica string) bool) {
	r.mu.Lock()
	var gone []string
	for name := range r.grants {
		if !exists(name) {
			gone = append(gone, name)
		}
	}
	r.mu.Unlock()
	for _, name := range gone {
		r.Forget(name)
	}
}

// Refresh replaces the tokens that are 80% through their lifetime at now.
func (r *Replicas) Refresh(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.grants {
		if now.Before(g.Issued.Add(g.Expires.Sub(g.Issued) * 4 / 5)) {
			continue
		}
		if err := r.writeLocked(g, now); err != nil {
			r.log.Error("identity: cannot renew a replica's token", "replica", g.Replica, "err", err)
		}
	}
}

// Run refreshes the tokens until ctx ends, checking ten times per
// lifetime (at least once a second, at most once a minute).
func (r *Replicas) Run(ctx context.Context) {
	every := min(max(r.ttl/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.Refresh(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
