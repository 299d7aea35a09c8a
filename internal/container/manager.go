package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/health"
	"skiff.dev/skiff/internal/initproc"
	"skiff.dev/skiff/internal/lazyregexp"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/store"
	"skiff.dev/skiff/internal/userns"
)

// Image is what the manager needs to know of a resolved image.
type Image struct {
	Ref    string // fully qualified reference it matched ("" if by ID)
	ID     string // config digest
	Layers []string
	// Config is the image's runnable configuration.
	Config v1.Config
}

// Images resolves image references to unpacked images.
type Images interface {
	Resolve(ctx context.Context, ref string) (*Image, error)
}

// Mounter mounts and unmounts container root filesystems.
type Mounter interface {
	// Mount mounts lowers (top first) under upper at target, creating
	// upper, work and target when missing; a new upper directory takes
	// the owner, mode and times of the image root, which the container's
	// root shows.
	Mount(lowers []string, upper, work, target string) error
	Unmount(target string) error
}

// SpecInput is what a Specer gets to build a container's OCI spec.
type SpecInput struct {
	ID, Hostname string
	Rootfs       string
	Image        v1.Config
	Config       api.ContainerConfig
	// NetNS is the network namespace to join ("" for a new, empty one);
	// HostNetwork shares the host's instead.
	NetNS       string
	HostNetwork bool
	// Mounts are added after the defaults (hosts, resolv.conf, hostname).
	Mounts []specs.Mount
	// IDMap, when set, gives the container a user namespace with this
	// mapping, pinned at UserNS (see package userns).
	IDMap  *api.IDMap
	UserNS string
}

// NetworkRequest asks Networks to attach a container.
type NetworkRequest struct {
	ContainerID, Name, Hostname string
	Network                     string
	// IP is the address asked for on Network (api.ContainerConfig.IP).
	IP      string
	Aliases []string
	Ports   []api.PortMapping
	// Extra are the further networks to join (api.ContainerConfig's
	// ExtraNetworks).
	Extra []api.NetworkAttachment
	// FilesDir receives hosts, resolv.conf and hostname.
	FilesDir string
	// ExtraHosts, DNS, DNSSearch and DNSOptions are the container's own
	// hosts and resolv.conf entries (see api.ContainerConfig).
	ExtraHosts, DNS, DNSSearch, DNSOptions []string
	// Created, if set, is called by Setup once the namespace and the
	// files exist, before it finishes the rest: the runtime's create
	// may then run alongside.
	Created func()
	// MakeNetNS, if set, makes the network namespace at path instead of
	// Setup (a container with a user namespace has it made owned by that
	// namespace); Teardown removes it all the same.
	MakeNetNS func(path string) error
}

// Networks attaches containers to networks.
type Networks interface {
	// Check says whether a container may ask for its first network
	// (with its address, if it names one), the further networks extra
	// and ports, before anything is made (unknown network: ErrNotFound;
	// an address in use: ErrConflict).
	Check(ctx context.Context, primary api.NetworkAttachment, extra []api.NetworkAttachment, ports []api.PortMapping) error
	// NetNSPath is where the namespace of a container on a bridge network
	// will be; the spec names it before Setup runs.
	NetNSPath(containerID string) string
	Setup(ctx context.Context, req NetworkRequest) (*api.NetworkSettings, error)
	Teardown(ctx context.Context, containerID string) error
	// Connect and Disconnect join an attached (running) container to one
	// more network, or take it off one, and return its settings.
	Connect(ctx context.Context, containerID string, x api.NetworkAttachment) (*api.NetworkSettings, error)
	Disconnect(ctx context.Context, containerID, network string) (*api.NetworkSettings, error)
}

// Specer builds OCI runtime specs. Exec derives an exec'd process from
// the container's spec and the request.
type Specer interface {
	Spec(in SpecInput) (*specs.Spec, error)
	Exec(spec *specs.Spec, rootfs string, req api.ExecRequest) (*specs.Process, error)
}

// Config holds a Manager's dependencies and settings.
type Config struct {
	Runtime runtime.Runtime
	// RuntimeName is recorded on each container (e.g. "runc").
	RuntimeName string
	Images      Images
	Mounter     Mounter
	Specer      Specer
	// Networks is optional: without it containers get loopback only.
	Networks Networks
	Store    *store.Store
	// Dir is the directory holding one subdirectory per container.
	Dir string
	// VolumesDir holds named volumes, one directory each.
	VolumesDir string
	// UserNSDir, if set, holds the spare user and network namespaces of
	// the id ranges that Apps own (see userns.Spares); without it each
	// start of a container with a user namespace makes its own.
	UserNSDir string
	// LogMaxSize caps each container log before rotation (0: no cap).
	LogMaxSize int64
	Logger     *slog.Logger
	// Notify, when set, is called with a container's new state after each
	// change (created, started, exited, restarting, removed). It is called
	// from many goroutines, sometimes with the manager's locks held: it
	// must not block, nor call the Manager, nor take a lock that is held
	// while calling the Manager.
	Notify func(c api.Container, removed bool)
	// Secrets resolves the containers' SecretEnv at each start; without
	// it a container with SecretEnv cannot be created.
	Secrets SecretResolver
}

// SecretResolver reads a value of a secret.
type SecretResolver interface {
	// Resolve returns the value of key in version of secret name.
	Resolve(ctx context.Context, name string, version int64, key string) ([]byte, error)
}

// Manager manages containers. It is safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	// bg is the context of background work (waiters, restarts); Close
	// cancels it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	byID   map[string]*entry
	byName map[string]*entry

	// volMu orders the creation of volume directories with their removal.
	volMu sync.Mutex

	// minBackoff and maxBackoff bound the restart delay (the constants of
	// the same names; tests shorten them).
	minBackoff, maxBackoff time.Duration

	// images is held for reading while Create resolves an image and
	// counts it in preparing, and for writing by HoldImages, so an image
	// cannot be removed between a container choosing it and using it. It
	// is never held while a container's files are read: a hostile image
	// must not stall image removal and, behind it, every other Create.
	images sync.RWMutex
	// preparing counts, by image ID, the containers being created from
	// each image and not registered yet; guarded by mu.
	preparing map[string]int

	// spares keeps namespaces ready for the id ranges of Apps (nil
	// without Config.UserNSDir).
	spares *userns.Spares
}

// HoldImages blocks container creation until the returned function is
// called; image removal and pruning hold it so that ImageInUse stays true
// for every image a container is being made from.
func (m *Manager) HoldImages() (release func()) {
	m.images.Lock()
	return m.images.Unlock
}

// entry is one container as the manager holds it.
type entry struct {
	// op serialises lifecycle operations on the container.
	op sync.Mutex

	// mu guards the fields below; it is never held while waiting.
	mu      sync.Mutex
	rec     store.ContainerRecord
	run     int           // incremented on every start
	exited  chan struct{} // closed when the current run has ended
	removed chan struct{} // closed when the container is gone
	gone    bool
	timer   *time.Timer // pending restart
	backoff time.Duration
	// prepared: the runtime has created the container (network attached,
	// init process waiting); Start only starts it.
	prepared bool

	// attachN counts clients streaming the container's output; an
	// auto-removal waits for them (attachIdle) so they see the whole log.
	attachN    int
	attachIdle chan struct{}
	// release, once closed, tells attached clients to stop holding the
	// container's output back (see attachRelease).
	release chan struct{}
}

// attachRelease returns a channel closed when the container is about to
// be killed: attached clients then drop output they have not taken, so
// that none can keep the monitor from recording the exit. e.mu is held.
func (e *entry) attachRelease() <-chan struct{} {
	if e.release == nil {
		e.release = make(chan struct{})
	}
	return e.release
}

// releaseAttachments closes the channel attachRelease returned.
func (e *entry) releaseAttachments() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.release != nil {
		close(e.release)
		e.release = nil
	}
}

func (e *entry) attach() {
	e.mu.Lock()
	e.attachN++
	e.mu.Unlock()
}

func (e *entry) detach() {
	e.mu.Lock()
	e.attachN--
	if e.attachN == 0 && e.attachIdle != nil {
		close(e.attachIdle)
		e.attachIdle = nil
	}
	e.mu.Unlock()
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// New returns a Manager over cfg. Call Restore before serving requests.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("create containers directory: %w", err)
	}
	var spares *userns.Spares
	if cfg.UserNSDir != "" {
		var err error
		if spares, err = userns.NewSpares(cfg.UserNSDir); err != nil {
			return nil, err
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg: cfg, log: cfg.Logger, bg: bg, cancel: cancel,
		byID: map[string]*entry{}, byName: map[string]*entry{}, preparing: map[string]int{},
		minBackoff: minBackoff, maxBackoff: maxBackoff, spares: spares,
	}, nil
}

// Close stops background work. Containers keep running.
func (m *Manager) Close() {
	m.cancel()
	m.mu.RLock()
	for _, e := range m.byID {
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		e.mu.Unlock()
	}
	m.mu.RUnlock()
	m.wg.Wait()
}

var nameRE = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (m *Manager) containerDir(id string) string { return filepath.Join(m.cfg.Dir, id) }

// Create makes a container from req without starting it (unless
// req.Start). Bad input is ErrInvalid and changes nothing.
func (m *Manager) Create(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error) {
	if err := validateConfig(&req.Config); err != nil {
		return api.Container{}, err
	}
	if req.Name != "" && !nameRE.MatchString(req.Name) {
		return api.Container{}, errdefs.Invalid("invalid container name %q: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", req.Name)
	}
	if m.cfg.Networks != nil {
		if req.Config.Network == "" {
			req.Config.Network = api.DefaultNetwork
		}
		primary := api.NetworkAttachment{Network: req.Config.Network, IP: req.Config.IP}
		if err := m.cfg.Networks.Check(ctx, primary, req.Config.ExtraNetworks, req.Config.Ports); err != nil {
			return api.Container{}, err
		}
	} else if req.Config.Network != "" && req.Config.Network != api.NetworkNone || len(req.Config.Ports) > 0 || len(req.Config.ExtraNetworks) > 0 || req.Config.IP != "" {
		return api.Container{}, errdefs.Invalid("this daemon has no networking: use --network none and no -p")
	}
	m.images.RLock()
	img, err := m.cfg.Images.Resolve(ctx, req.Config.Image)
	if err != nil {
		m.images.RUnlock()
		return api.Container{}, err
	}
	req.Config.Healthcheck = health.Merge(req.Config.Healthcheck, imageHealthcheck(img.Config))
	id := newID()
	name := req.Name
	m.mu.Lock()
	if name == "" {
		name = m.randomNameLocked()
	}
	if _, taken := m.byName[name]; taken {
		m.mu.Unlock()
		m.images.RUnlock()
		return api.Container{}, errdefs.Conflict("container name %q is already in use: remove that container (skiff rm %s) or choose another name", name, name)
	}
	// Reserve the name, and keep the image in use, while the container
	// is prepared.
	e := &entry{exited: closedChan(), removed: make(chan struct{}), backoff: m.minBackoff}
	m.byName[name] = e
	m.preparing[img.ID]++
	m.mu.Unlock()
	m.images.RUnlock()

	rec, err := m.prepare(ctx, id, name, img, req.Config, req.IDRangeOwner)
	m.mu.Lock()
	if m.preparing[img.ID]--; m.preparing[img.ID] == 0 {
		delete(m.preparing, img.ID)
	}
	if err != nil {
		delete(m.byName, name)
		m.mu.Unlock()
		return api.Container{}, err
	}
	e.rec = *rec
	m.byID[id] = e
	m.mu.Unlock()
	if m.cfg.Notify != nil {
		m.cfg.Notify(rec.Container, false)
	}
	m.log.Info("container created", "id", id[:12], "name", name, "image", img.Ref)
	if req.Start {
		if err := m.Start(ctx, id); err != nil {
			return m.snapshot(e), err
		}
	}
	return m.snapshot(e), nil
}

// prepare mounts the rootfs, builds and saves the spec and records the
// container. On error it leaves nothing behind.
func (m *Manager) prepare(ctx context.Context, id, name string, img *Image, cfg api.ContainerConfig, owner string) (_ *store.ContainerRecord, err error) {
	var idm *api.IDMap
	if cfg.UserNS == api.UserNSAuto {
		if idm, err = m.allocIDMap(ctx, rangeOwner(owner, id)); err != nil {
			return nil, err
		}
		if owner == "" {
			defer func() {
				if err != nil {
					m.releaseIDMap(context.WithoutCancel(ctx), id, idm)
				}
			}()
		} else if err := m.keepRange(*idm); err != nil {
			return nil, err
		}
	}
	dir := m.containerDir(id)
	// The mounter makes upper/, work/ and rootfs/ inside: upper/ with the
	// image root's mode, which the container's root takes.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create container directory: %w", err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	defer func() {
		if err != nil {
			m.cfg.Mounter.Unmount(rootfs)
			if clearDir(dir) == nil {
				os.RemoveAll(dir)
			}
		}
	}()
	// Volumes are made (and filled from the image) while the rootfs is
	// mounted, through the user namespace's idmapped mounts if it has one.
	var vols []specs.Mount
	var volErr error
	err = m.mountRootfs(dir, img.Layers, idm, func() error {
		vols, volErr = m.mounts(rootfs, cfg.Mounts, idm)
		return volErr
	})
	if volErr != nil {
		return nil, volErr
	}
	if err != nil {
		return nil, fmt.Errorf("mount root filesystem: %w", err)
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = id[:12]
	}
	in := SpecInput{ID: id, Hostname: hostname, Rootfs: rootfs, Image: img.Config, Config: cfg}
	if idm != nil {
		in.IDMap, in.UserNS = idm, usernsPin(dir)
	}
	if m.cfg.Networks != nil {
		switch cfg.Network {
		case api.NetworkHost:
			in.HostNetwork = true
		default:
			// "none" too: the network makes that namespace with loopback up.
			in.NetNS = m.cfg.Networks.NetNSPath(id)
		}
		// hosts, resolv.conf and hostname are written by the network at
		// each start; the mounts need their sources now.
		for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
			src := filepath.Join(dir, f)
			if err := os.WriteFile(src, nil, 0o644); err != nil {
				return nil, err
			}
			in.Mounts = append(in.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
		}
	}
	in.Mounts = append(in.Mounts, vols...)
	in.Mounts = append(in.Mounts, secretSpecMounts(cfg.SecretMounts)...)
	spec, err := m.cfg.Specer.Spec(in)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(dir, "spec.json"), data); err != nil {
		return nil, err
	}
	rec := &store.ContainerRecord{Container: api.Container{
		ID: id, Name: name, Created: time.Now().UTC(), Config: cfg,
		ImageID: img.ID, ImageRef: img.Ref, Process: spec.Process.Args,
		State:   api.ContainerState{Status: api.StatusCreated},
		Runtime: m.cfg.RuntimeName, LogPath: filepath.Join(dir, "ctr.log"),
		IDMap: idm,
	}}
	if err := m.cfg.Store.CreateContainer(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// volumeNameRE is what a named volume may be called.
var volumeNameRE = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// mounts turns the user's mounts into spec mounts, creating named volumes
// on first use. An empty volume mounted over a directory of the image
// (rootfs, not yet running) is first filled with that directory's files.
// idm is the id range of a container with a user namespace (else nil):
// its volumes are filled with the image's own owners, and its spec
// names their idmapped mount points (see mapVolumes).
func (m *Manager) mounts(rootfs string, ms []api.Mount, idm *api.IDMap) ([]specs.Mount, error) {
	dir := filepath.Dir(rootfs)
	var out []specs.Mount
	for i, mt := range ms {
		if !filepath.IsAbs(mt.Target) || filepath.Clean(mt.Target) == "/" {
			return nil, errdefs.Invalid("mounts[%d]: target %q must be an absolute path other than /", i, mt.Target)
		}
		if err := checkMountFields(i, mt); err != nil {
			return nil, err
		}
		opts := []string{"rbind", "rprivate"}
		if mt.BindPropagation != "" {
			opts[1] = mt.BindPropagation
		}
		if mt.ReadOnly {
			opts = append(opts, "ro")
		}
		var src string
		switch mt.Type {
		case api.MountVolume:
			if !volumeNameRE.MatchString(mt.Source) {
				return nil, errdefs.Invalid("mounts[%d]: invalid volume name %q: use letters, digits, '_', '.' or '-'", i, mt.Source)
			}
			if m.cfg.VolumesDir == "" {
				return nil, errdefs.NotImplemented("this daemon has no volume directory")
			}
			src = filepath.Join(m.cfg.VolumesDir, mt.Source, "_data")
			m.volMu.Lock()
			err := os.MkdirAll(src, 0o755)
			if err == nil && !mt.VolumeNoCopy && isEmptyDir(src) {
				if idm != nil {
					err = fillVolumeMapped(*idm, rootfs, mt.Target, src)
				} else {
					err = fillVolume(rootfs, mt.Target, src)
				}
				if err != nil {
					// Empty again, so the next container fills it.
					os.RemoveAll(src)
					os.MkdirAll(src, 0o755)
					err = fmt.Errorf("fill it with the image's %s: %w", mt.Target, err)
				}
			}
			m.volMu.Unlock()
			if err != nil {
				return nil, fmt.Errorf("create volume %s: %w", mt.Source, err)
			}
			if idm != nil {
				src = volumeMountPoint(dir, i)
			}
		case api.MountTmpfs:
			if mt.TmpfsMode&^0o7777 != 0 {
				return nil, errdefs.Invalid("mounts[%d]: tmpfs mode %#o is not permission bits: use an octal mode such as 0755", i, mt.TmpfsMode)
			}
			mode := uint32(0o1777)
			if mt.TmpfsMode != 0 {
				mode = mt.TmpfsMode
			}
			topts := []string{"nosuid", "nodev", fmt.Sprintf("mode=%o", mode)}
			if mt.ReadOnly {
				topts = append(topts, "ro")
			}
			if mt.TmpfsSize < 0 {
				return nil, errdefs.Invalid("mounts[%d]: tmpfs size %d must not be negative", i, mt.TmpfsSize)
			}
			if mt.TmpfsSize > 0 {
				topts = append(topts, fmt.Sprintf("size=%d", mt.TmpfsSize))
			}
			out = append(out, specs.Mount{Destination: filepath.Clean(mt.Target), Type: "tmpfs", Source: "tmpfs", Options: topts})
			continue
		case api.MountBind:
			if !filepath.IsAbs(mt.Source) {
				return nil, errdefs.Invalid("mounts[%d]: bind source %q must be an absolute host path", i, mt.Source)
			}
			if _, err := os.Stat(mt.Source); err != nil {
				return nil, errdefs.Invalid("mounts[%d]: bind source %s: %v", i, mt.Source, err)
			}
			src = mt.Source
		default:
			return nil, errdefs.Invalid("mounts[%d]: unknown type %q: use volume, bind or tmpfs", i, mt.Type)
		}
		out = append(out, specs.Mount{Destination: filepath.Clean(mt.Target), Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkShmGroups refuses a negative /dev/shm size and an empty added
// group when the container is created, not first when it starts.
func checkShmGroups(c *api.ContainerConfig) error {
	if c.ShmSize < 0 {
		return errdefs.Invalid("config.shmSize %d must not be negative: give a size in bytes, or leave it out for 64 MiB", c.ShmSize)
	}
	if slices.Contains(c.GroupAdd, "") {
		return errdefs.Invalid("config.groupAdd has an empty group: give a group name or a numeric gid")
	}
	return nil
}

func validateConfig(c *api.ContainerConfig) error {
	if strings.TrimSpace(c.Image) == "" {
		return errdefs.Invalid("config.image is required: name the image to run")
	}
	if cs := c.ConsoleSize; cs != nil {
		if !c.Tty {
			return errdefs.Invalid("config.consoleSize needs config.tty: only a terminal has a size")
		}
		if cs.Height == 0 || cs.Width == 0 || cs.Height > 1000 || cs.Width > 1000 {
			return errdefs.Invalid("config.consoleSize %dx%d: height and width must be 1..1000", cs.Height, cs.Width)
		}
	}
	switch c.RestartPolicy.Name {
	case "", api.RestartNo, api.RestartAlways:
		if c.RestartPolicy.MaxRetries != 0 {
			return errdefs.Invalid("restart policy %q takes no retry count: only on-failure does", c.RestartPolicy.Name)
		}
	case api.RestartOnFailure:
		if c.RestartPolicy.MaxRetries < 0 {
			return errdefs.Invalid("restart policy on-failure: retry count must be 0 or more, got %d", c.RestartPolicy.MaxRetries)
		}
	default:
		return errdefs.Invalid("unknown restart policy %q: use no, on-failure[:N] or always", c.RestartPolicy.Name)
	}
	if c.AutoRemove && c.RestartPolicy.Name != "" && c.RestartPolicy.Name != api.RestartNo {
		return errdefs.Invalid("--rm and --restart %s conflict: a container removed on exit cannot be restarted", c.RestartPolicy.Name)
	}
	r := c.Resources
	switch {
	case r.MemoryBytes < 0:
		return errdefs.Invalid("memory limit must not be negative")
	case r.MemoryBytes > 0 && r.MemoryBytes < 6<<20:
		return errdefs.Invalid("memory limit %d bytes is too small: the minimum is 6MiB", r.MemoryBytes)
	case r.NanoCPUs < 0:
		return errdefs.Invalid("cpus must not be negative")
	case r.NanoCPUs > 0 && r.NanoCPUs < 1e7:
		return errdefs.Invalid("cpus %.3f is too small: the minimum is 0.01", float64(r.NanoCPUs)/1e9)
	case r.PidsLimit < 0:
		return errdefs.Invalid("pids limit must not be negative")
	case r.MemoryReservationBytes < 0:
		return errdefs.Invalid("memory reservation must not be negative")
	case r.MemoryBytes > 0 && r.MemoryReservationBytes > r.MemoryBytes:
		return errdefs.Invalid("memory reservation %d bytes is above the memory limit %d: make it smaller", r.MemoryReservationBytes, r.MemoryBytes)
	}
	if c.StopTimeout != nil && *c.StopTimeout < 0 {
		return errdefs.Invalid("stop timeout must not be negative")
	}
	if err := health.Check(c.Healthcheck); err != nil {
		return err
	}
	for _, kv := range c.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return errdefs.Invalid("invalid environment variable %q: use KEY=VALUE", kv)
		}
	}
	if err := checkSecretMounts(c.SecretMounts); err != nil {
		return err
	}
	for _, se := range c.SecretEnv {
		if se.Name == "" || strings.Contains(se.Name, "=") || se.Secret == "" || se.Key == "" || se.Version < 1 {
			return errdefs.Invalid("invalid secret environment variable %q: it needs a name without '=', a secret, a key and a version from 1", se.Name)
		}
	}
	if c.StopSignal != "" {
		if _, err := ParseSignal(c.StopSignal); err != nil {
			return err
		}
	}
	if err := api.CheckHostsDNS(c); err != nil {
		return err
	}
	if err := api.CheckLimits(c); err != nil {
		return err
	}
	if err := checkShmGroups(c); err != nil {
		return err
	}
	if err := checkRunOpts(c); err != nil {
		return err
	}
	switch c.UserNS {
	case "", api.UserNSHost:
	case api.UserNSAuto:
		if c.Network == api.NetworkHost {
			return errdefs.Invalid("--userns auto and --network host conflict: a container with its own user namespace needs a network namespace it owns; use another network or --userns host")
		}
		if c.Privileged {
			return errdefs.Invalid("--userns auto and --privileged conflict: privileges over the host need the host's user namespace; use --userns host")
		}
	default:
		return errdefs.Invalid("unknown user namespace mode %q: use auto or host", c.UserNS)
	}
	if c.Network == api.NetworkNone || c.Network == api.NetworkHost {
		for _, h := range c.ExtraHosts {
			if _, ip, _ := api.ParseExtraHost(h); ip == api.HostGateway {
				return errdefs.Invalid("extra host %q: --network %s has no gateway for %s to name", h, c.Network, api.HostGateway)
			}
		}
	}
	return nil
}

// lookup finds a container by id, unique id prefix or name.
func (m *Manager) lookup(ref string) (*entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e, ok := m.byName[ref]; ok && e.rec.ID != "" {
		return e, nil
	}
	if e, ok := m.byID[ref]; ok {
		return e, nil
	}
	if ref != "" && len(ref) < 64 && isHex(ref) {
		var found *entry
		for id, e := range m.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.Invalid("container id prefix %q is ambiguous: give more characters", ref)
				}
				found = e
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, errdefs.NotFound("no such container %q: see skiff ps -a", ref)
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (m *Manager) snapshot(e *entry) api.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.rec.Container
	return c
}

// Get returns a container by id, id prefix or name.
func (m *Manager) Get(ctx context.Context, ref string) (api.Container, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return api.Container{}, err
	}
	return m.snapshot(e), nil
}

// List returns the containers, oldest first; only running ones unless all.
func (m *Manager) List(ctx context.Context, all bool) []api.Container {
	m.mu.RLock()
	out := make([]api.Container, 0, len(m.byID))
	for _, e := range m.byID {
		c := m.snapshot(e)
		if all || c.State.Status == api.StatusRunning || c.State.Status == api.StatusStopping || c.State.Status == api.StatusRestarting {
			out = append(out, c)
		}
	}
	m.mu.RUnlock()
	sortContainers(out)
	return out
}

// ImageInUse reports whether any container was made, or is being made,
// from image id.
func (m *Manager) ImageInUse(id string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.preparing[id] > 0 {
		return true
	}
	for _, e := range m.byID {
		e.mu.Lock()
		used := e.rec.ImageID == id
		e.mu.Unlock()
		if used {
			return true
		}
	}
	return false
}

// ContainersUsingImage returns the names of the containers made from
// image id.
func (m *Manager) ContainersUsingImage(id string) []string {
	var names []string
	for _, c := range m.List(context.Background(), true) {
		if c.ImageID == id {
			names = append(names, c.Name)
		}
	}
	return names
}

// Counts returns the number of containers and of running ones.
func (m *Manager) Counts() (total, running int) {
	for _, c := range m.List(context.Background(), true) {
		total++
		if c.State.Status == api.StatusRunning {
			running++
		}
	}
	return total, running
}

// persist writes e's state and announces it; callers hold e.mu.
func (m *Manager) persist(ctx context.Context, e *entry) error {
	err := m.cfg.Store.PutContainerState(context.WithoutCancel(ctx), &e.rec)
	if m.cfg.Notify != nil {
		m.cfg.Notify(e.rec.Container, false)
	}
	return err
}

// Start starts a created or exited container. Starting a running
// container does nothing.
func (m *Manager) Start(ctx context.Context, ref string) error {
	return m.start(ctx, ref, nil)
}

// start is Start with startHookedLocked's beforeStart.
func (m *Manager) start(ctx context.Context, ref string, beforeStart func(id string) error) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	if e.gone {
		e.mu.Unlock()
		return errdefs.NotFound("no such container %q", ref)
	}
	status := e.rec.State.Status
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.mu.Unlock()
	if status == api.StatusRunning || status == api.StatusStopping {
		return nil
	}
	return m.startHookedLocked(ctx, e, false, beforeStart)
}

// startLocked runs the container; the caller holds e.op. A prepared
// container (see Prepare) only needs its process started.
func (m *Manager) startLocked(ctx context.Context, e *entry, restart bool) error {
	return m.startHookedLocked(ctx, e, restart, nil)
}

// startHookedLocked is startLocked calling beforeStart, if not nil, once
// the runtime has created the container and before its process starts;
// an error from it fails the start.
func (m *Manager) startHookedLocked(ctx context.Context, e *entry, restart bool, beforeStart func(id string) error) error {
	ctx = context.WithoutCancel(ctx)
	id := e.rec.ID
	e.mu.Lock()
	prepared := e.prepared
	pid := e.rec.State.Pid
	e.mu.Unlock()
	var err error
	if !prepared {
		if err := m.noteIntent(ctx, e, store.IntentStart); err != nil {
			return err
		}
		if pid, err = m.prepareRunLocked(ctx, e); err != nil {
			return m.startFailedLocked(ctx, e, err)
		}
		// The network made is recorded before the process may run.
		if err := m.noteIntent(ctx, e, store.IntentStart); err != nil {
			m.unprepareLocked(ctx, e)
			return m.startFailedLocked(ctx, e, err)
		}
	}
	m.pauseForTest(pauseCreated, id)
	if beforeStart != nil {
		err = beforeStart(id)
	}
	startedAt := time.Now().UTC()
	if err == nil {
		err = m.cfg.Runtime.Start(ctx, id)
	}
	if err == nil && e.rec.Config.Init {
		// Running means signals reach the command: stop and kill right
		// after the start must not beat the init's handlers.
		initproc.WaitReady(pid, 5*time.Second)
	}
	if err == nil {
		m.pauseForTest(pauseStarted, id)
	}
	if err != nil {
		m.unprepareLocked(ctx, e)
		return m.startFailedLocked(ctx, e, err)
	}
	m.log.Debug("container start timing", "id", id[:12], "prepared", prepared, "start", time.Since(startedAt))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prepared = false
	e.run++
	e.rec.State = api.ContainerState{
		Status: api.StatusRunning, Pid: pid, StartedAt: startedAt,
		RestartCount: e.rec.State.RestartCount,
	}
	if restart {
		e.rec.State.RestartCount++
	}
	e.rec.State.Health = initialHealth(e.rec.Config.Healthcheck)
	e.rec.ManuallyStopped = false
	e.rec.Intent = ""
	e.exited = make(chan struct{})
	if err := m.persist(ctx, e); err != nil {
		m.log.Error("record container start", "id", id[:12], "err", err)
	}
	m.watch(e, e.run)
	return nil
}

// prepareRunLocked does everything of a start but starting the process:
// it mounts the rootfs if needed, attaches the network and has the
// runtime create the container (its init process waits to be started).
// On error it undoes what it did. The caller holds e.op.
func (m *Manager) prepareRunLocked(ctx context.Context, e *entry) (pid int, err error) {
	id := e.rec.ID
	dir := m.containerDir(id)
	spec, err := m.loadSpec(id)
	if err != nil {
		return 0, err
	}
	if err := m.ensureMounted(ctx, e); err != nil {
		return 0, err
	}
	// A previous run may have left runtime state behind.
	m.cfg.Runtime.Delete(ctx, id)
	t0 := time.Now()
	hidden, err := m.addSecretEnv(ctx, spec, e.rec.Config.SecretEnv)
	if err != nil {
		return 0, err
	}
	idm := e.rec.IDMap
	var makeNetNS func(string) error
	if idm != nil {
		if m.cfg.Networks == nil {
			if err := m.pinNamespaces(id, *idm, ""); err != nil {
				return 0, err
			}
		} else {
			makeNetNS = func(path string) error { return m.pinNamespaces(id, *idm, path) }
		}
		defer func() {
			if err != nil {
				m.unpinNamespaces(id)
			}
		}()
	}
	create := func() (int, error) {
		if idm != nil {
			detach, err := m.mapVolumes(dir, e.rec.Config.Mounts)
			if err != nil {
				return 0, err
			}
			// The runtime has cloned the volumes' mounts once Create returns.
			defer detach()
		}
		logMax, logFiles := logLimits(e.rec.Config.Log, m.cfg.LogMaxSize)
		return m.cfg.Runtime.Create(ctx, id, spec, runtime.CreateOpts{Bundle: dir, LogPath: e.rec.LogPath, LogMaxSize: logMax, LogMaxFiles: logFiles, Stdin: e.rec.Config.OpenStdin, Terminal: e.rec.Config.Tty, HiddenEnv: hidden})
	}
	var netset *api.NetworkSettings
	if m.cfg.Networks == nil {
		if pid, err = create(); err != nil {
			return 0, err
		}
	} else {
		// The network finishes its set-up (interfaces, addresses, DNS,
		// port rules) while the runtime creates the container: the
		// container only needs the namespace and its files to exist.
		created := make(chan struct{})
		var once sync.Once
		done := make(chan struct{})
		var netErr error
		go func() {
			defer close(done)
			netset, netErr = m.cfg.Networks.Setup(ctx, NetworkRequest{
				ContainerID: id, Name: e.rec.Name, Hostname: spec.Hostname, Network: e.rec.Config.Network, IP: e.rec.Config.IP,
				Aliases: e.rec.Config.NetworkAliases, Ports: e.rec.Config.Ports, Extra: e.rec.Config.ExtraNetworks, FilesDir: dir,
				ExtraHosts: e.rec.Config.ExtraHosts, DNS: e.rec.Config.DNS, DNSSearch: e.rec.Config.DNSSearch, DNSOptions: e.rec.Config.DNSOptions,
				Created:   func() { once.Do(func() { close(created) }) },
				MakeNetNS: makeNetNS,
			})
		}()
		select {
		case <-created:
		case <-done:
			if netErr != nil {
				return 0, netErr
			}
		}
		pid, err = create()
		<-done
		switch {
		case netErr != nil && err == nil:
			m.cfg.Runtime.Delete(ctx, id)
			return 0, netErr
		case netErr != nil:
			return 0, netErr
		case err != nil:
			m.cfg.Networks.Teardown(ctx, id)
			return 0, err
		}
	}
	if err := m.writeSecretFiles(ctx, pid, spec, e.rec.Config.SecretMounts); err != nil {
		m.cfg.Runtime.Delete(ctx, id)
		if m.cfg.Networks != nil {
			m.cfg.Networks.Teardown(ctx, id)
		}
		return 0, err
	}
	m.log.Debug("container create timing", "id", id[:12], "network and create", time.Since(t0))
	e.mu.Lock()
	e.rec.NetworkSettings = netset
	e.rec.State.Pid = pid
	e.mu.Unlock()
	return pid, nil
}

// unprepareLocked deletes what prepareRunLocked made: the runtime's
// container and the network attachment. The caller holds e.op.
func (m *Manager) unprepareLocked(ctx context.Context, e *entry) {
	m.cfg.Runtime.Delete(ctx, e.rec.ID)
	if m.cfg.Networks != nil {
		m.cfg.Networks.Teardown(ctx, e.rec.ID)
	}
	if e.rec.IDMap != nil {
		m.unpinNamespaces(e.rec.ID)
	}
	e.mu.Lock()
	e.prepared = false
	e.rec.NetworkSettings = nil
	e.mu.Unlock()
}

// startFailedLocked records that a start failed and returns the error to
// give the caller.
func (m *Manager) startFailedLocked(ctx context.Context, e *entry, err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.State.Status = api.StatusExited
	e.rec.Intent = ""
	e.rec.State.Error = err.Error()
	e.rec.State.ExitCode = startFailureCode(err)
	e.rec.State.FinishedAt = time.Now().UTC()
	e.rec.State.Pid = 0
	m.persist(ctx, e)
	return classifyStartError(e.rec.Name, err)
}

// Prepare gets a created container ready to start in a few milliseconds:
// network attached and the runtime's create done, so Start only has to
// start its process. Preparing a prepared or running container does
// nothing.
func (m *Manager) Prepare(ctx context.Context, ref string) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	status, prepared := e.rec.State.Status, e.prepared
	e.mu.Unlock()
	if prepared || status != api.StatusCreated {
		return nil
	}
	if err := m.noteIntent(ctx, e, store.IntentStart); err != nil {
		return err
	}
	_, err = m.prepareRunLocked(context.WithoutCancel(ctx), e)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.Intent = ""
	e.prepared = err == nil
	if perr := m.persist(ctx, e); err == nil && perr != nil {
		// Unrecorded, the prepared state would be undone by a restart.
		m.log.Error("record container prepared", "id", e.rec.ID[:12], "err", perr)
	}
	if err != nil {
		return classifyStartError(e.rec.Name, err)
	}
	return nil
}

// noteIntent records, before the step begins, that e is about to take
// it (see store.ContainerRecord.Intent).
func (m *Manager) noteIntent(ctx context.Context, e *entry, intent string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rec.Intent = intent
	if err := m.persist(ctx, e); err != nil {
		return fmt.Errorf("record container state: %w", err)
	}
	return nil
}

// startFailureCode is the exit code recorded when a container could not
// start: 127 when its command does not exist, 126 otherwise (as docker).
func startFailureCode(err error) int {
	msg := err.Error()
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") {
		return 127
	}
	return 126
}

func classifyStartError(name string, err error) error {
	if errdefs.Category(err) != nil && !errors.Is(err, errdefs.ErrUnavailable) {
		return err
	}
	if startFailureCode(err) == 127 {
		return errdefs.Invalid("start container %s: %v: check the command and that the image contains it", name, err)
	}
	return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("start container %s: %w", name, err))
}

func (m *Manager) loadSpec(id string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(m.containerDir(id), "spec.json"))
	if err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("container spec is corrupt: %w", err)
	}
	return &s, nil
}

// ensureMounted mounts the container's rootfs if it is not (after a host
// reboot, mounts are gone while the state remains).
func (m *Manager) ensureMounted(ctx context.Context, e *entry) error {
	dir := m.containerDir(e.rec.ID)
	rootfs := filepath.Join(dir, "rootfs")
	if mounted, err := isMountPoint(rootfs); err != nil || mounted {
		return err
	}
	img, err := m.cfg.Images.Resolve(ctx, e.rec.ImageID)
	if err != nil {
		return fmt.Errorf("image of container: %w", err)
	}
	return m.mountRootfs(dir, img.Layers, e.rec.IDMap, nil)
}

func isMountPoint(path string) (bool, error) {
	var st, pst syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return false, err
	}
	if err := syscall.Lstat(filepath.Dir(path), &pst); err != nil {
		return false, err
	}
	return st.Dev != pst.Dev, nil
}

// watch starts the goroutine that waits for run of e to end.
func (m *Manager) watch(e *entry, run int) {
	id := e.rec.ID
	m.monitorHealth(e, run)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		st, err := m.cfg.Runtime.Wait(m.bg, id)
		if err != nil {
			if m.bg.Err() != nil {
				return
			}
			if !errors.Is(err, errdefs.ErrUnavailable) {
				m.log.Error("wait for container", "id", id[:12], "err", err)
				return
			}
			// The monitor is gone: nothing would record the exit. End the
			// run now rather than leave a container no stop can stop.
			m.log.Warn("the container's monitor is gone: killing the container", "id", id[:12], "err", err)
			if err := m.cfg.Runtime.Kill(m.bg, id, syscall.SIGKILL, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				m.log.Warn("send SIGKILL", "id", id[:12], "err", err)
			}
			e.mu.Lock()
			e.rec.State.Error = "the container's monitor (conmon) exited while it ran: the container was killed"
			e.mu.Unlock()
			st = runtime.ExitStatus{Code: 137, At: time.Now()}
		}
		m.exitedRun(e, run, st)
	}()
}

// exitedRun records that run of e ended with st and queues the follow-up.
func (m *Manager) exitedRun(e *entry, run int, st runtime.ExitStatus) {
	e.mu.Lock()
	if e.run != run || e.gone {
		e.mu.Unlock()
		return
	}
	if e.rec.State.Status == api.StatusRunning || e.rec.State.Status == api.StatusStopping {
		e.rec.State.Status = api.StatusExited
		e.rec.State.ExitCode = st.Code
		e.rec.State.OOMKilled = st.OOMKilled
		e.rec.State.FinishedAt = st.At.UTC()
		if st.At.IsZero() {
			e.rec.State.FinishedAt = time.Now().UTC()
		}
		e.rec.State.Pid = 0
		if h := e.rec.State.Health; h != nil {
			// As docker: a container that does not run is not healthy.
			e.rec.State.Health = &api.Health{Status: api.HealthUnhealthy, FailingStreak: h.FailingStreak, Log: h.Log}
		}
		e.rec.Intent, e.rec.StopDeadline = "", time.Time{}
		if err := m.persist(m.bg, e); err != nil {
			m.log.Error("record container exit", "id", e.rec.ID[:12], "err", err)
		}
		close(e.exited)
	}
	e.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.afterExit(e, run)
	}()
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
	// runResetsBackoff is how long a run must last for the restart delay
	// to start again from minBackoff.
	runResetsBackoff = 10 * time.Second
)

// afterExit cleans up the runtime state of an ended run and restarts or
// removes the container as its configuration says.
func (m *Manager) afterExit(e *entry, run int) {
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	if e.run != run || e.gone {
		e.mu.Unlock()
		return
	}
	rec := e.rec
	e.mu.Unlock()
	ctx := m.bg
	if rec.Config.AutoRemove && !m.shouldRestart(rec) {
		m.waitAttached(e, 10*time.Second)
		if err := m.removeExitedLocked(ctx, e); err != nil {
			m.log.Error("auto-remove container", "id", rec.ID[:12], "err", err)
		}
		return
	}
	if err := m.cfg.Runtime.Delete(ctx, rec.ID); err != nil {
		m.log.Warn("clean up runtime state", "id", rec.ID[:12], "err", err)
	}
	m.teardownNetwork(ctx, e)
	if m.shouldRestart(rec) {
		e.mu.Lock()
		if rec.State.FinishedAt.Sub(rec.State.StartedAt) >= runResetsBackoff {
			e.backoff = m.minBackoff
		}
		delay := e.backoff
		e.backoff = min(e.backoff*2, m.maxBackoff)
		e.rec.State.Status = api.StatusRestarting
		m.persist(ctx, e)
		m.scheduleRestartLocked(e, delay)
		e.mu.Unlock()
		m.log.Info("container exited, restarting", "id", rec.ID[:12], "code", rec.State.ExitCode, "delay", delay)
		return
	}
	if rec.Config.AutoRemove {
		m.waitAttached(e, 10*time.Second)
		if err := m.removeExitedLocked(ctx, e); err != nil {
			m.log.Error("auto-remove container", "id", rec.ID[:12], "err", err)
		}
	}
}

func (m *Manager) shouldRestart(rec store.ContainerRecord) bool {
	if rec.ManuallyStopped || m.bg.Err() != nil {
		return false
	}
	switch rec.Config.RestartPolicy.Name {
	case api.RestartAlways:
		return true
	case api.RestartOnFailure:
		max := rec.Config.RestartPolicy.MaxRetries
		return rec.State.ExitCode != 0 && (max == 0 || rec.State.RestartCount < max)
	}
	return false
}

// scheduleRestartLocked restarts e after delay; the caller holds e.mu.
func (m *Manager) scheduleRestartLocked(e *entry, delay time.Duration) {
	if e.timer != nil {
		e.timer.Stop()
	}
	run := e.run
	e.timer = time.AfterFunc(delay, func() {
		if m.bg.Err() != nil {
			return
		}
		e.op.Lock()
		defer e.op.Unlock()
		e.mu.Lock()
		ok := e.run == run && !e.gone && e.rec.State.Status == api.StatusRestarting
		e.timer = nil
		e.mu.Unlock()
		if !ok {
			return
		}
		if err := m.startLocked(m.bg, e, true); err != nil {
			m.log.Warn("restart container", "id", e.rec.ID[:12], "err", err)
			// A failed start counts as a failed run.
			e.mu.Lock()
			e.rec.State.RestartCount++
			rec := e.rec
			e.mu.Unlock()
			if m.shouldRestart(rec) {
				e.mu.Lock()
				delay := e.backoff
				e.backoff = min(e.backoff*2, m.maxBackoff)
				e.rec.State.Status = api.StatusRestarting
				m.persist(m.bg, e)
				m.scheduleRestartLocked(e, delay)
				e.mu.Unlock()
			}
		}
	})
}

func (m *Manager) waitAttached(e *entry, limit time.Duration) {
	e.mu.Lock()
	if e.attachN == 0 {
		e.mu.Unlock()
		return
	}
	if e.attachIdle == nil {
		e.attachIdle = make(chan struct{})
	}
	done := e.attachIdle
	e.mu.Unlock()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// Stop stops a running container: its stop signal, then SIGKILL after
// timeout (the container's own when nil). A stopped container is left
// alone by its restart policy until started again.
func (m *Manager) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	return m.stopLocked(ctx, e, timeout)
}

func (m *Manager) stopLocked(ctx context.Context, e *entry, timeout *time.Duration) error {
	e.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.rec.ManuallyStopped = true
	status := e.rec.State.Status
	id, cfg, run := e.rec.ID, e.rec.Config, e.run
	grace := 10 * time.Second
	if cfg.StopTimeout != nil {
		grace = time.Duration(*cfg.StopTimeout) * time.Second
	}
	if timeout != nil {
		grace = *timeout
	}
	deadline := time.Now().Add(grace)
	if status == api.StatusRestarting {
		e.rec.State.Status = api.StatusExited
	}
	if status == api.StatusRunning || status == api.StatusStopping {
		// Written before the signal: a restart finishes the stop.
		e.rec.State.Status = api.StatusStopping
		e.rec.Intent, e.rec.StopDeadline = store.IntentStop, deadline
	}
	m.persist(ctx, e)
	exited := e.exited
	e.mu.Unlock()
	if status != api.StatusRunning && status != api.StatusStopping {
		return nil
	}
	sig := syscall.SIGTERM
	if cfg.StopSignal != "" {
		sig, _ = ParseSignal(cfg.StopSignal)
	}
	if grace > 0 {
		if err := m.cfg.Runtime.Kill(ctx, id, sig, false); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Warn("send stop signal", "id", id[:12], "err", err)
		}
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		case <-ctx.Done():
			// The caller gave up; the stop still ends on time.
			m.killAt(e, run, deadline)
			return ctx.Err()
		}
	}
	e.releaseAttachments()
	if err := m.cfg.Runtime.Kill(ctx, id, syscall.SIGKILL, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		m.log.Warn("send SIGKILL", "id", id[:12], "err", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return errdefs.Unavailable("container %s did not exit 30s after SIGKILL", id[:12])
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart stops (if running) and starts a container.
func (m *Manager) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	if err := m.stopLocked(ctx, e, timeout); err != nil {
		return err
	}
	e.mu.Lock()
	gone := e.gone
	e.mu.Unlock()
	if gone {
		return errdefs.NotFound("container %q was removed", ref)
	}
	// The exit follow-up is queued behind us; clean the runtime state here.
	m.cfg.Runtime.Delete(ctx, e.rec.ID)
	return m.startLocked(ctx, e, false)
}

// Kill sends sig to a running container.
func (m *Manager) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.mu.Lock()
	status, id := e.rec.State.Status, e.rec.ID
	stopSig := syscall.SIGTERM
	if e.rec.Config.StopSignal != "" {
		stopSig, _ = ParseSignal(e.rec.Config.StopSignal)
	}
	if status == api.StatusRunning || status == api.StatusStopping {
		if sig == syscall.SIGKILL || sig == stopSig {
			e.rec.ManuallyStopped = true
			m.persist(ctx, e)
		}
	}
	e.mu.Unlock()
	if status != api.StatusRunning && status != api.StatusStopping {
		return errdefs.Conflict("container %s is not running", ref)
	}
	return m.cfg.Runtime.Kill(ctx, id, sig, sig == syscall.SIGKILL)
}

// Remove deletes a container. A running one is refused unless force, in
// which case it is killed first.
func (m *Manager) Remove(ctx context.Context, ref string, force bool) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	status := e.rec.State.Status
	e.mu.Unlock()
	if status == api.StatusRunning || status == api.StatusStopping {
		if !force {
			return errdefs.Conflict("container %s is running: stop it first (skiff stop %s) or force removal (skiff rm -f %s)", ref, ref, ref)
		}
		zero := time.Duration(0)
		if err := m.stopLocked(ctx, e, &zero); err != nil {
			return err
		}
	}
	return m.removeLocked(ctx, e)
}

// removeLocked deletes e everywhere; the caller holds e.op. The runtime
// state, rootfs mount and directory are cleaned before the record goes.
func (m *Manager) removeLocked(ctx context.Context, e *entry) error {
	ctx = context.WithoutCancel(ctx)
	e.mu.Lock()
	if e.gone {
		e.mu.Unlock()
		return nil
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	id, name := e.rec.ID, e.rec.Name
	e.mu.Unlock()
	if err := m.cleanupDisk(ctx, id); err != nil {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	return m.forget(ctx, e)
}

// removeExitedLocked removes an exited container the fast way: the record
// goes first, so waiters (skiff run --rm) return at once, and the runtime
// state, mount and directory are cleaned in the background. A crash in
// between leaves a directory that Restore removes as a stray.
func (m *Manager) removeExitedLocked(ctx context.Context, e *entry) error {
	e.mu.Lock()
	if e.gone {
		e.mu.Unlock()
		return nil
	}
	id := e.rec.ID
	e.mu.Unlock()
	if err := m.forget(ctx, e); err != nil {
		return err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.cleanupDisk(context.Background(), id); err != nil {
			m.log.Warn("clean up removed container", "id", id[:12], "err", err)
		}
	}()
	return nil
}

// teardownNetwork detaches e from its network after a run.
func (m *Manager) teardownNetwork(ctx context.Context, e *entry) {
	if m.cfg.Networks == nil {
		return
	}
	if err := m.cfg.Networks.Teardown(ctx, e.rec.ID); err != nil {
		m.log.Warn("detach container from its network", "id", e.rec.ID[:12], "err", err)
	}
	e.mu.Lock()
	e.rec.NetworkSettings = nil
	m.persist(ctx, e)
	e.mu.Unlock()
}

// cleanupDisk deletes a container's runtime state, network attachment,
// rootfs mount and directory.
func (m *Manager) cleanupDisk(ctx context.Context, id string) error {
	if err := m.cfg.Runtime.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete from the runtime: %w", err)
	}
	if m.cfg.Networks != nil {
		if err := m.cfg.Networks.Teardown(ctx, id); err != nil {
			return fmt.Errorf("detach from the network: %w", err)
		}
	}
	dir := m.containerDir(id)
	if err := m.cfg.Mounter.Unmount(filepath.Join(dir, "rootfs")); err != nil {
		return fmt.Errorf("unmount root filesystem: %w", err)
	}
	if err := clearDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container directory: %w", err)
	}
	return nil
}

// forget deletes e's record and makes it unknown to lookups.
func (m *Manager) forget(ctx context.Context, e *entry) error {
	id, name := e.rec.ID, e.rec.Name
	if err := m.cfg.Store.DeleteContainer(context.WithoutCancel(ctx), id); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.byID, id)
	if m.byName[name] == e {
		delete(m.byName, name)
	}
	m.mu.Unlock()
	e.mu.Lock()
	e.gone = true
	close(e.removed)
	c := e.rec.Container
	e.mu.Unlock()
	m.releaseIDMap(context.WithoutCancel(ctx), id, c.IDMap)
	if c.IDMap != nil {
		m.collectSpares(context.WithoutCancel(ctx))
	}
	if m.cfg.Notify != nil {
		m.cfg.Notify(c, true)
	}
	m.log.Info("container removed", "id", id[:12], "name", name)
	return nil
}

// Wait conditions.
const (
	WaitNotRunning = "not-running"
	WaitRemoved    = "removed"
)

// Wait blocks until the container is not running (or removed) and
// returns its last exit status.
func (m *Manager) Wait(ctx context.Context, ref, condition string) (api.ContainerWaitResponse, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return api.ContainerWaitResponse{}, err
	}
	switch condition {
	case "", WaitNotRunning:
		e.mu.Lock()
		ch := e.exited
		e.mu.Unlock()
		select {
		case <-ch:
		case <-e.removed:
		case <-ctx.Done():
			return api.ContainerWaitResponse{}, ctx.Err()
		}
	case WaitRemoved:
		select {
		case <-e.removed:
		case <-ctx.Done():
			return api.ContainerWaitResponse{}, ctx.Err()
		}
	default:
		return api.ContainerWaitResponse{}, errdefs.Invalid("unknown wait condition %q: use not-running or removed", condition)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return api.ContainerWaitResponse{ExitCode: e.rec.State.ExitCode, OOMKilled: e.rec.State.OOMKilled}, nil
}

// Exec runs a process in a running container and returns its exit code.
func (m *Manager) Exec(ctx context.Context, ref string, req api.ExecRequest, stdio runtime.ExecIO) (int, error) {
	if len(req.Cmd) == 0 {
		return 0, errdefs.Invalid("exec needs a command")
	}
	e, err := m.lookup(ref)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	status, id := e.rec.State.Status, e.rec.ID
	e.mu.Unlock()
	if status != api.StatusRunning {
		return 0, errdefs.Conflict("container %s is not running: start it first (skiff start %s)", ref, ref)
	}
	spec, err := m.loadSpec(id)
	if err != nil {
		return 0, err
	}
	p, err := m.cfg.Specer.Exec(spec, filepath.Join(m.containerDir(id), "rootfs"), req)
	if err != nil {
		return 0, err
	}
	return m.cfg.Runtime.Exec(ctx, id, p, stdio)
}

// Stats samples a running container's resource usage.
func (m *Manager) Stats(ctx context.Context, ref string) (api.ContainerStats, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return api.ContainerStats{}, err
	}
	c := m.snapshot(e)
	if c.State.Status != api.StatusRunning {
		return api.ContainerStats{}, errdefs.Conflict("container %s is not running", ref)
	}
	s, err := m.cfg.Runtime.Stats(ctx, c.ID)
	if err != nil {
		return api.ContainerStats{}, err
	}
	return api.ContainerStats{
		ID: c.ID, Name: c.Name, Time: s.Time,
		CPUUsageNanos: s.CPUUsageNanos, MemoryUsageBytes: s.MemoryUsageBytes,
		MemoryLimitBytes: s.MemoryLimitBytes, Pids: s.Pids, PidsLimit: s.PidsLimit,
	}, nil
}

// addSecretEnv resolves secret variables into spec's process environment
// (in memory only: spec.json keeps none) and returns their names.
func (m *Manager) addSecretEnv(ctx context.Context, spec *specs.Spec, vars []api.SecretEnvVar) ([]string, error) {
	if len(vars) == 0 {
		return nil, nil
	}
	if m.cfg.Secrets == nil {
		return nil, errdefs.Unavailable("this daemon has no secrets store")
	}
	names := make([]string, 0, len(vars))
	vals := make([]string, 0, len(vars))
	for _, v := range vars {
		val, err := m.cfg.Secrets.Resolve(ctx, v.Secret, v.Version, v.Key)
		if err != nil {
			return nil, fmt.Errorf("environment variable %s: %w", v.Name, err)
		}
		names = append(names, v.Name)
		vals = append(vals, v.Name+"="+string(val))
	}
	env := spec.Process.Env[:0:0]
	for _, kv := range spec.Process.Env {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(names, k) {
			env = append(env, kv)
		}
	}
	spec.Process.Env = append(env, vals...)
	return names, nil
}
