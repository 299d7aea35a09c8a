package gitops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// Store keeps the sources, their history and events.
type Store interface {
	CreateSource(ctx context.Context, s api.Source) error
	UpdateSourceSpec(ctx context.Context, name string, spec api.SourceSpec) error
	UpdateSourceStatus(ctx context.Context, name string, st api.SourceStatus) error
	GetSource(ctx context.Context, name string) (api.Source, error)
	ListSources(ctx context.Context) ([]api.Source, error)
	DeleteSource(ctx context.Context, name string) error
	AddSourceHistory(ctx context.Context, name string, e api.SourceHistoryEntry) error
	SourceHistory(ctx context.Context, name string) ([]api.SourceHistoryEntry, error)
	AddEvent(ctx context.Context, e api.Event) error
}

// Apps applies, reads and deletes Apps (the App controller, behind the
// admission policy).
type Apps interface {
	Apply(ctx context.Context, a api.App) (api.App, error)
	List(ctx context.Context) ([]api.App, error)
	Delete(ctx context.Context, name string) error
}

// Secrets reads the values of skiff secrets (tokens, webhook secrets)
// and writes the secrets a source declares.
type Secrets interface {
	Reveal(ctx context.Context, name string) (api.SecretValues, error)
	Create(ctx context.Context, name string, data map[string][]byte) (api.Secret, error)
	Set(ctx context.Context, name string, data map[string][]byte) (api.Secret, error)
	Delete(ctx context.Context, name string) error
}

// Config holds a Manager's dependencies.
type Config struct {
	Store   Store
	Apps    Apps
	Secrets Secrets
	// Admit, when set, checks every App of a commit against the
	// admission policy before anything is applied.
	Admit func(api.App) error
	// AgeKeyFile holds the age identities that decrypt the SOPS-encrypted
	// Secret documents of every source; read at each sync that has one.
	AgeKeyFile string
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Manager runs one reconcile loop per source. It is safe for concurrent
// use.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	bg    context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	hooks deliveries

	mu    sync.Mutex
	loops map[string]*loop
}

// New returns a Manager; Start starts its loops.
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bg, stop := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger, bg: bg, stop: stop, loops: map[string]*loop{}}
}

// Start starts a loop for every stored source; each syncs at once, so a
// sync a stopped daemon left part way is finished.
func (m *Manager) Start(ctx context.Context) error {
	srcs, err := m.cfg.Store.ListSources(ctx)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		m.startLoop(s.Name)
	}
	return nil
}

// Close stops the loops and waits for them; a sync under way is cut.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

// loop is one source's reconcile loop and what it keeps between syncs.
type loop struct {
	name   string
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	wmu     sync.Mutex
	waiters []chan api.Source

	// The last commit fetched and what it held (only the loop uses them).
	cached   plumbing.Hash
	commit   string
	desired  Manifests
	loadErr  error
	lastFail string
}

func (m *Manager) startLoop(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.loops[name]; ok {
		return
	}
	ctx, cancel := context.WithCancel(m.bg)
	l := &loop{name: name, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	m.loops[name] = l
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(l.done)
		m.run(ctx, l)
	}()
}

func (m *Manager) stopLoop(name string) {
	m.mu.Lock()
	l := m.loops[name]
	delete(m.loops, name)
	m.mu.Unlock()
	if l != nil {
		l.cancel()
		<-l.done
	}
}

// run syncs at start, then on every kick and every interval.
func (m *Manager) run(ctx context.Context, l *loop) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-l.kick:
		}
		// This sync serves the waiters so far and covers a wake-up they
		// left pending (taken together under wmu, as trigger adds both),
		// so that it does not run a second sync later.
		l.wmu.Lock()
		waiters := l.waiters
		l.waiters = nil
		select {
		case <-l.kick:
		default:
		}
		l.wmu.Unlock()
		src, err := m.cfg.Store.GetSource(ctx, l.name)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errdefs.ErrNotFound) {
				m.log.Warn("read a source", "source", l.name, "err", err)
				timer.Reset(DefaultInterval)
				continue
			}
			return
		}
		src = m.sync(ctx, l, src)
		for _, w := range waiters {
			w <- src
		}
		timer.Reset(interval(src.Spec))
	}
}

// trigger wakes a source's loop; a wake-up already pending covers it. It
// returns the loop's done channel, closed when the loop stops.
func (m *Manager) trigger(name string, reply chan api.Source) (<-chan struct{}, error) {
	m.mu.Lock()
	l := m.loops[name]
	m.mu.Unlock()
	if l == nil {
		return nil, errdefs.NotFound("no source named %q: see skiff source ls", name)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if reply != nil {
		l.waiters = append(l.waiters, reply)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return l.done, nil
}

// Add stores a new source and starts its loop, which syncs at once.
func (m *Manager) Add(ctx context.Context, s api.Source) (api.Source, error) {
	s.Status = api.SourceStatus{}
	if err := CheckSource(s); err != nil {
		return api.Source{}, err
	}
	for flag, name := range map[string]string{"--token-secret": s.Spec.TokenSecret, "--webhook-secret": s.Spec.WebhookSecret} {
		if name == "" {
			continue
		}
		if _, err := m.secretValue(ctx, name); err != nil {
			return api.Source{}, fmt.Errorf("%s: %w", flag, err)
		}
	}
	if s.Spec.SSHKeyFile != "" {
		if _, err := os.Stat(s.Spec.SSHKeyFile); err != nil {
			return api.Source{}, errdefs.Invalid("--ssh-key %s: %v (the file is read on the daemon's host)", s.Spec.SSHKeyFile, err)
		}
	}
	s.Created = m.cfg.Now().UTC()
	if err := m.cfg.Store.CreateSource(ctx, s); err != nil {
		return api.Source{}, err
	}
	m.event(ctx, s.Name, api.EventNormal, "SourceAdded", "following "+describeRef(s.Spec))
	m.startLoop(s.Name)
	return s, nil
}

// Get returns a source with each object's readiness as of now.
func (m *Manager) Get(ctx context.Context, name string) (api.Source, error) {
	s, err := m.cfg.Store.GetSource(ctx, name)
	if err != nil {
		return api.Source{}, err
	}
	live, err := m.liveApps(ctx)
	if err != nil {
		return api.Source{}, err
	}
	return withHealth(s, live), nil
}

// List returns every source, by name, with its health.
func (m *Manager) List(ctx context.Context) ([]api.Source, error) {
	srcs, err := m.cfg.Store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	live, err := m.liveApps(ctx)
	if err != nil {
		return nil, err
	}
	for i := range srcs {
		srcs[i] = withHealth(srcs[i], live)
	}
	return srcs, nil
}

func (m *Manager) liveApps(ctx context.Context) (map[string]api.App, error) {
	apps, err := m.cfg.Apps.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]api.App, len(apps))
	for _, a := range apps {
		out[a.Metadata.Name] = a
	}
	return out, nil
}

// withHealth fills in each object's readiness and the source's: Ready
// when the last sync succeeded, none is under way, and every App the
// source applied is Ready.
func withHealth(s api.Source, live map[string]api.App) api.Source {
	st := &s.Status
	var notReady []string
	for i := range st.Objects {
		o := &st.Objects[i]
		if o.Action == string(OpPrune) {
			continue
		}
		if o.Kind == SecretKind {
			o.Ready = o.Action != "failed"
			continue
		}
		a, ok := live[o.Name]
		o.Ready = ok && app.IsReady(a)
		if !ok && o.Message == "" {
			o.Message = "not found"
		}
		if !o.Ready {
			notReady = append(notReady, o.Name)
		}
	}
	sort.Strings(notReady)
	switch {
	case st.LastResult == "":
		st.Message = "not synced yet"
	case st.LastResult == api.SourceResultFailed:
		st.Message = "the last sync failed: " + st.LastError
	case st.Syncing != "":
		st.Message = "syncing " + short(st.Syncing)
	case len(notReady) > 0:
		st.Message = fmt.Sprintf("%d of %d Apps not Ready: %v", len(notReady), len(st.Objects), notReady)
	default:
		st.Ready = true
		st.Message = ""
	}
	return s
}

// Delete stops a source's loop and removes it with its history. The Apps
// it applied keep running, no longer owned by any source.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if _, err := m.cfg.Store.GetSource(ctx, name); err != nil {
		return err
	}
	m.stopLoop(name)
	return m.cfg.Store.DeleteSource(ctx, name)
}

// Sync syncs a source now and returns it as the sync left it.
func (m *Manager) Sync(ctx context.Context, name string) (api.Source, error) {
	reply := make(chan api.Source, 1)
	done, err := m.trigger(name, reply)
	if err != nil {
		return api.Source{}, err
	}
	select {
	case s := <-reply:
		return m.Get(ctx, s.Name)
	case <-done:
		return api.Source{}, errdefs.NotFound("source %s was removed (or the daemon is stopping) before it synced", name)
	case <-ctx.Done():
		return api.Source{}, ctx.Err()
	}
}

// SetSuspend suspends (syncs only report drift) or resumes a source; a
// resumed source syncs at once.
func (m *Manager) SetSuspend(ctx context.Context, name string, suspend bool) (api.Source, error) {
	s, err := m.cfg.Store.GetSource(ctx, name)
	if err != nil {
		return api.Source{}, err
	}
	s.Spec.Suspend = suspend
	if err := m.cfg.Store.UpdateSourceSpec(ctx, name, s.Spec); err != nil {
		return api.Source{}, err
	}
	reason := "Resumed"
	if suspend {
		reason = "Suspended"
	}
	m.event(ctx, name, api.EventNormal, reason, "source "+map[bool]string{true: "suspended: drift is only reported", false: "resumed"}[suspend])
	if !suspend {
		m.trigger(name, nil)
	}
	return m.Get(ctx, name)
}

// History returns a source's syncs that changed something or failed,
// newest first.
func (m *Manager) History(ctx context.Context, name string) ([]api.SourceHistoryEntry, error) {
	return m.cfg.Store.SourceHistory(ctx, name)
}

// Hook checks a webhook call for source name and, if it is genuine and
// new, wakes the source's loop; it returns without waiting for the sync.
func (m *Manager) Hook(ctx context.Context, name string, call HookCall) (api.SourceHookResponse, error) {
	s, err := m.cfg.Store.GetSource(ctx, name)
	if err != nil {
		return api.SourceHookResponse{}, err
	}
	if s.Spec.WebhookSecret == "" {
		return api.SourceHookResponse{}, errdefs.NotFound("source %s has no webhook: add it with --webhook-secret SECRET", name)
	}
	secret, err := m.secretValue(ctx, s.Spec.WebhookSecret)
	if err != nil {
		return api.SourceHookResponse{}, err
	}
	now := m.cfg.Now()
	id, err := CheckHook(call, secret, now)
	if err == nil && !m.hooks.fresh(name+"\x00"+id, now) {
		err = errdefs.Unauthorized("delivery %s was already received: refused as a replay", id)
	}
	if err != nil {
		m.event(ctx, name, api.EventWarning, "WebhookRefused", err.Error())
		return api.SourceHookResponse{}, err
	}
	if _, err := m.trigger(name, nil); err != nil {
		return api.SourceHookResponse{}, err
	}
	return api.SourceHookResponse{Source: name, Queued: true}, nil
}

// secretValue reads a secret holding one value: its key "token", or its
// only key.
func (m *Manager) secretValue(ctx context.Context, name string) ([]byte, error) {
	if m.cfg.Secrets == nil {
		return nil, errdefs.NotFound("secret %q not found: this daemon keeps no secrets", name)
	}
	v, err := m.cfg.Secrets.Reveal(ctx, name)
	if err != nil {
		return nil, err
	}
	if t, ok := v.Data["token"]; ok {
		return t, nil
	}
	if len(v.Data) == 1 {
		for _, t := range v.Data {
			return t, nil
		}
	}
	return nil, errdefs.Invalid("secret %s has several keys and none is named token: give it one key, or a key named token", name)
}

func (m *Manager) event(ctx context.Context, name, typ, reason, msg string) {
	e := api.Event{Time: m.cfg.Now(), Kind: api.EventKindSource, Name: name, Type: typ, Reason: reason, Message: msg}
	if err := m.cfg.Store.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		m.log.Warn("record an event", "source", name, "err", err)
	}
}

// describeRef says what a spec follows: "main of URL".
func describeRef(s api.SourceSpec) string {
	switch {
	case s.Branch != "":
		return "branch " + s.Branch + " of " + s.Git
	case s.Tag != "":
		return "tag " + s.Tag + " of " + s.Git
	case s.Semver != "":
		return "the highest tag in " + s.Semver + " of " + s.Git
	}
	return "the default branch of " + s.Git
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
