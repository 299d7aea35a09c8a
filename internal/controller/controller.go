package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/runtime"
)

// Store persists Apps, revisions and events.
type Store interface {
	// CreateApp stores a new App (ErrConflict if one has its name) and
	// returns it with its resourceVersion.
	CreateApp(ctx context.Context, a api.App) (api.App, error)
	// UpdateApp writes an App's metadata and spec if it is still at
	// a.Metadata.ResourceVersion, else returns a *store.StaleError
	// (ErrConflict) and writes nothing. The status stays as stored.
	UpdateApp(ctx context.Context, a api.App) (api.App, error)
	// UpdateAppStatus writes only an App's status, under the same
	// condition as UpdateApp.
	UpdateAppStatus(ctx context.Context, name, resourceVersion string, s api.AppStatus) (api.App, error)
	// GetApp returns an App with its resourceVersion.
	GetApp(ctx context.Context, name string) (api.App, error)
	ListApps(ctx context.Context) ([]api.App, error)
	// DeleteApp deletes an App and its revisions.
	DeleteApp(ctx context.Context, name string) error
	PutRevision(ctx context.Context, r api.Revision) error
	ListRevisions(ctx context.Context, app string) ([]api.Revision, error)
	DeleteRevision(ctx context.Context, name string) error
	AddEvent(ctx context.Context, e api.Event) error
}

// Containers runs replicas.
type Containers interface {
	Create(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error)
	Get(ctx context.Context, ref string) (api.Container, error)
	List(ctx context.Context, all bool) []api.Container
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *time.Duration) error
	Restart(ctx context.Context, ref string, timeout *time.Duration) error
	Remove(ctx context.Context, ref string, force bool) error
	Exec(ctx context.Context, ref string, req api.ExecRequest, stdio runtime.ExecIO) (int, error)
	Prepare(ctx context.Context, ref string) error
	Stats(ctx context.Context, ref string) (api.ContainerStats, error)
}

// Images resolves an image reference to the image ID replicas run.
type Images interface {
	ResolveID(ctx context.Context, ref string) (id, digest string, err error)
}

// Networks checks the further networks replicas join.
type Networks interface {
	// CheckAttachments says whether a container whose first network is
	// primary may also join the networks of extra: an unknown network is
	// ErrNotFound.
	CheckAttachments(ctx context.Context, primary string, extra []api.NetworkAttachment) error
}

// Router is the ingress: it takes route tables and drains endpoints.
type Router interface {
	Update(t ingress.Table) error
	WaitIdle(ctx context.Context, endpointID string) error
	RevisionStats(revision string) ingress.RevisionStats
}

// Identities issues replicas' identity tokens (internal/identity).
type Identities interface {
	// Issue writes the replica's token and returns the host directory
	// to mount at identity.MountPath.
	Issue(app, revision, replica string, audiences []string) (dir string, err error)
	// Forget removes a replica's token.
	Forget(replica string)
}

// Config holds a Controller's dependencies.
type Config struct {
	Store      Store
	Containers Containers
	Images     Images
	// Networks checks the networks of spec.network.networks before
	// replicas are made; nil leaves that to the container's creation.
	Networks Networks
	// Router gets the route tables; nil drops them (a controller without
	// an ingress, as in tests of the API alone).
	Router Router
	// Domain makes default hosts: NAME.Domain ("localhost").
	Domain string
	// URLPort is the ingress port shown in status.url (omitted for 80).
	URLPort int
	// Resync is how often every App is reconciled regardless (default 2s).
	Resync time.Duration
	// BeforeStop, when set, is called once a replica taken out of the
	// routes has no request in flight here, before it is stopped; it
	// returns when stopping it is safe from what this controller cannot
	// see (after a handover: once the daemon handed over from, whose
	// ingress may still send it requests, has exited), or when ctx ends.
	BeforeStop func(ctx context.Context)
	// DrainTimeout bounds how long a replica taken out of the routes waits
	// for its requests in flight (WebSockets, long polls) before it is
	// stopped anyway (default 5m).
	DrainTimeout time.Duration
	// Secrets gives the versions of the secrets Apps use; nil makes every
	// secretRef a missing secret.
	Secrets SecretVersions
	// Identities gives the replicas of Apps with spec.identity their
	// tokens; nil fails those replicas.
	Identities Identities
	// IDRanges, when set, frees a deleted App's user namespace id range
	// (the container manager does not give out a range its replicas
	// still use).
	IDRanges IDRanges
	Logger   *slog.Logger
}

// Controller reconciles Apps. It is safe for concurrent use.
type Controller struct {
	cfg Config
	log *slog.Logger
	bg  context.Context
	cnl context.CancelFunc
	wg  sync.WaitGroup

	// appLocks queues the API verbs per App.
	appLocks appLocks

	// qmu guards the worker's queue: Apps to reconcile and events to
	// record. It is a leaf lock.
	qmu     sync.Mutex
	pending map[string]bool
	events  []api.Event
	wake    chan struct{}
	// logged is when each event was last logged (the worker's own).
	logged map[string]time.Time

	// mu guards apps and everything reachable from them. It is held
	// only for work in memory: never across a store write (events are
	// queued, revisions and status are written after it is released).
	mu   sync.Mutex
	apps map[string]*appState

	// bcMu guards byContainer, which finds a replica by container ID. It
	// is a leaf lock: nothing else is locked while it is held, so the
	// container manager's notifications (sent under its own locks) can
	// take it.
	bcMu        sync.Mutex
	byContainer map[string]*replica

	routeMu sync.Mutex
}

// appState is what the controller holds of one App.
type appState struct {
	name     string
	app      api.App
	exists   bool
	revs     []api.Revision
	imageIDs map[string]string // revision → image ID
	replicas map[string]*replica
	creating map[string]int // revision → creations under way
	// want is the replica count asked for each revision (autoscaler,
	// activator); missing means min.
	want    map[string]int
	targets []target
	revErrs map[string]revError // revision → why it cannot run
	scalers map[string]*scaler  // revision → autoscaler
	// preparing counts prewarmed replicas being created, per revision.
	preparing map[string]int
	// launching holds the names of replicas being created and started.
	launching map[string]bool
}

type revError struct{ reason, message string }

// New returns a controller; Start begins reconciling.
func New(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resync == 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.Router == nil {
		cfg.Router = nopRouter{}
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Minute
	}
	if cfg.Domain == "" {
		cfg.Domain = app.DefaultDomain
	}
	bg, cnl := context.WithCancel(context.Background())
	return &Controller{cfg: cfg, log: cfg.Logger, bg: bg, cnl: cnl,
		pending: map[string]bool{}, wake: make(chan struct{}, 1), logged: map[string]time.Time{},
		apps: map[string]*appState{}, byContainer: map[string]*replica{}}
}

// Start loads the Apps, adopts their running replicas and starts the
// reconcile loop.
func (c *Controller) Start(ctx context.Context) error {
	apps, err := c.cfg.Store.ListApps(ctx)
	if err != nil {
		return err
	}
	for _, a := range apps {
		c.enqueue(a.Metadata.Name)
	}
	// Containers of Apps that are gone still need removing.
	for _, ctr := range c.cfg.Containers.List(ctx, true) {
		if name := ctr.Config.Labels[LabelApp]; name != "" {
			c.enqueue(name)
		}
	}
	c.wg.Add(3)
	go c.worker()
	go c.resync()
	go c.autoscaleLoop()
	return nil
}

// Close stops reconciling. Replicas keep running.
func (c *Controller) Close() {
	c.cnl()
	c.bcMu.Lock()
	for _, r := range c.byContainer {
		r.stopProber()
	}
	c.bcMu.Unlock()
	c.wg.Wait()
	c.recordEvents()
}

func (c *Controller) enqueue(name string) {
	c.qmu.Lock()
	c.pending[name] = true
	c.qmu.Unlock()
	c.wakeWorker()
}

func (c *Controller) wakeWorker() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Controller) worker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.bg.Done():
			return
		case <-c.wake:
		}
		for {
			c.recordEvents()
			c.qmu.Lock()
			var names []string
			for n := range c.pending {
				names = append(names, n)
			}
			clear(c.pending)
			c.qmu.Unlock()
			if len(names) == 0 {
				break
			}
			sort.Strings(names)
			for _, n := range names {
				if c.bg.Err() != nil {
					return
				}
				if err := c.reconcile(c.bg, n); err != nil {
					c.log.Warn("reconcile app", "app", n, "err", err)
				}
				c.recordEvents()
			}
		}
	}
}

func (c *Controller) resync() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-c.bg.Done():
			return
		case <-t.C:
			c.mu.Lock()
			for n := range c.apps {
				c.enqueue(n)
			}
			c.mu.Unlock()
		}
	}
}

// ContainerChanged is the container manager's notification hook. It is
// called with the manager's locks held, so it takes only leaf locks.
func (c *Controller) ContainerChanged(ctr api.Container, removed bool) {
	name := ctr.Config.Labels[LabelApp]
	if name == "" {
		return
	}
	c.bcMu.Lock()
	r := c.byContainer[ctr.ID]
	c.bcMu.Unlock()
	if r != nil {
		r.poke()
	}
	c.enqueue(name)
}

// Activate asks for a replica of an App's revision (the ingress calls it
// when a request finds none). It writes nothing to the store: the event
// is queued for the worker, which records it.
func (c *Controller) Activate(ctx context.Context, appName, revision string) {
	c.mu.Lock()
	st := c.apps[appName]
	activated := false
	if st != nil {
		if sc := st.scalers[revision]; sc != nil {
			sc.dec.Activate(time.Now())
		}
		if st.want[revision] < 1 {
			st.want[revision] = 1
			activated = true
		}
	}
	c.mu.Unlock()
	c.enqueue(appName)
	if activated {
		c.event(st, api.EventNormal, "Activated", "revision %s: a request is waiting: starting a replica", revision)
	}
}

func randomSuffix() string {
	const letters = "bcdfghjklmnpqrstvwxz0123456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// event queues an event for st's App; the worker records it in the store
// and the log (recordEvents), so no caller waits for the store.
func (c *Controller) event(st *appState, typ, reason, format string, args ...any) {
	c.appEvent(st.name, typ, reason, format, args...)
}

// appEvent queues an event for the App named app.
func (c *Controller) appEvent(app, typ, reason, format string, args ...any) {
	e := api.Event{Time: time.Now().UTC(), Kind: "App", Name: app, Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...)}
	c.qmu.Lock()
	c.events = append(c.events, e)
	c.qmu.Unlock()
	c.wakeWorker()
}

// recordEvents writes the queued events to the store and the log. Every
// event is recorded (the store counts repeats); the log gets a repeat at
// most once a minute. Only the worker calls it (and Close, after it).
func (c *Controller) recordEvents() {
	c.qmu.Lock()
	evs := c.events
	c.events = nil
	c.qmu.Unlock()
	for _, e := range evs {
		if err := c.cfg.Store.AddEvent(context.WithoutCancel(c.bg), e); err != nil {
			c.log.Warn("record event", "app", e.Name, "err", err)
		}
		key := e.Name + "\x00" + e.Reason + "\x00" + e.Message
		if t, ok := c.logged[key]; ok && e.Time.Sub(t) < time.Minute {
			continue
		}
		if len(c.logged) > 1000 {
			for k, t := range c.logged {
				if e.Time.Sub(t) >= time.Minute {
					delete(c.logged, k)
				}
			}
		}
		c.logged[key] = e.Time
		if e.Type == api.EventWarning {
			c.log.Warn(e.Message, "app", e.Name, "reason", e.Reason)
		} else {
			c.log.Info(e.Message, "app", e.Name, "reason", e.Reason)
		}
	}
}

// state returns (creating) the appState of name; the caller holds c.mu.
func (c *Controller) stateLocked(name string) *appState {
	st := c.apps[name]
	if st == nil {
		st = &appState{name: name, imageIDs: map[string]string{}, replicas: map[string]*replica{},
			creating: map[string]int{}, want: map[string]int{}, revErrs: map[string]revError{},
			scalers: map[string]*scaler{}, preparing: map[string]int{}, launching: map[string]bool{}}
		c.apps[name] = st
	}
	return st
}

var errGone = errors.New("app gone")

// isNotFound reports an ErrNotFound error.
func isNotFound(err error) bool { return errors.Is(err, errdefs.ErrNotFound) }

// nopRouter is the Router of a controller configured without one: it
// takes route tables and drops them.
type nopRouter struct{}

func (nopRouter) Update(ingress.Table) error                     { return nil }
func (nopRouter) WaitIdle(context.Context, string) error         { return nil }
func (nopRouter) RevisionStats(string) (s ingress.RevisionStats) { return s }

var _ Router = nopRouter{}

// IDRanges frees user namespace id ranges.
type IDRanges interface {
	// ReleaseIDRange frees owner's range; an owner without one is fine.
	ReleaseIDRange(ctx context.Context, owner string) error
}
