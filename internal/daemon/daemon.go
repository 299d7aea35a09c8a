package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/container"
	"skiff.dev/skiff/internal/controller"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image"
	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/network"
	"skiff.dev/skiff/internal/runtime/runc"
	"skiff.dev/skiff/internal/store"
)

// Defaults.
const (
	DefaultRoot       = "/var/lib/skiff"
	DefaultSocket     = "/run/skiff/skiff.sock"
	DefaultRuntime    = "runc"
	DefaultLogMaxSize = 10 << 20
	// SocketGroup, when a group of that name exists, owns the API socket,
	// so its members can use the CLI without root.
	SocketGroup = "skiff"
	// DefaultMaxImageSize is the image store's default bound (20 GiB).
	DefaultMaxImageSize = image.DefaultMaxImageSize
)

// Config is the daemon's configuration.
type Config struct {
	// Root holds all state (images, layers, containers, skiff.db).
	Root string
	// Socket is the unix socket the API listens on (mode 0660, group
	// SocketGroup if that group exists).
	Socket string
	// Runtime is the OCI runtime: "runc", "crun" or a path.
	Runtime string
	// LogMaxSize caps each container log before it is rotated.
	LogMaxSize int64
	// MaxImageSize bounds image data: an import or build upload, an
	// archive or layer decompressed, the layers of an image written or
	// unpacked (default DefaultMaxImageSize).
	MaxImageSize int64
	// IngressAddr is where the HTTP ingress listens (default
	// 127.0.0.1:8080; ":80" serves every address on the standard port).
	IngressAddr string
	// Domain makes Apps' default hosts: NAME.Domain (default localhost).
	Domain string
	// DrainTimeout bounds the wait for a replica's requests in flight
	// before it is stopped anyway (default 5m).
	DrainTimeout time.Duration
	// DefaultSubnet is the default network's subnet ("" picks a free one).
	DefaultSubnet string
	// MetricsAddr, when set, serves Prometheus metrics on /metrics over
	// TCP there (they are always on the API socket too).
	MetricsAddr string
	// Version is reported by the API.
	Version string
	Logger  *slog.Logger
}

// Daemon is a running skiff daemon.
type Daemon struct {
	cfg        Config
	log        *slog.Logger
	lock       *os.File
	db         *store.Store
	images     *image.Store
	runtime    *runc.Runtime
	ctrs       *container.Manager
	networks   *network.Manager
	proxy      *ingress.Proxy
	apps       *controller.Controller
	listener   net.Listener
	server     *http.Server
	metricsSrv *http.Server
}

// notify forwards container changes to the App controller once it exists.
func (d *Daemon) notify(c api.Container, removed bool) {
	if d.apps != nil {
		d.apps.ContainerChanged(c, removed)
	}
}

// Activate forwards the ingress's requests for replicas to the controller.
func (d *Daemon) Activate(ctx context.Context, app, revision string) {
	if d.apps != nil {
		d.apps.Activate(ctx, app, revision)
	}
}

// New sets the daemon up: it locks the root, opens the stores, starts
// the runtime, re-adopts containers and listens on the socket. Serve then
// answers requests.
func New(ctx context.Context, cfg Config) (_ *Daemon, err error) {
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.Runtime == "" {
		cfg.Runtime = DefaultRuntime
	}
	if cfg.LogMaxSize == 0 {
		cfg.LogMaxSize = DefaultLogMaxSize
	}
	if cfg.MaxImageSize <= 0 {
		cfg.MaxImageSize = DefaultMaxImageSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Root = root
	if cfg.Socket, err = filepath.Abs(cfg.Socket); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", root, err)
	}
	if d.lock, err = lockRoot(root); err != nil {
		return nil, err
	}
	// Refuse a socket a live daemon answers on before anything starts.
	if c, err := net.DialTimeout("unix", cfg.Socket, time.Second); err == nil {
		c.Close()
		return nil, errdefs.Conflict("another daemon is listening on %s: stop it, or give this one another --socket", cfg.Socket)
	}
	if d.db, err = store.Open(ctx, filepath.Join(root, "skiff.db")); err != nil {
		return nil, err
	}
	if d.images, err = image.Open(root, image.WithMaxImageSize(cfg.MaxImageSize), image.WithLogger(d.log.With("component", "images"))); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if d.runtime, err = runc.New(ctx, runc.WithStateDir(filepath.Join(root, "runtime")), runc.WithRuntime(cfg.Runtime)); err != nil {
		return nil, fmt.Errorf("set up the container runtime: %w", err)
	}
	info, err := d.runtime.Info(ctx)
	if err != nil {
		return nil, err
	}
	cleanBuilds(ctx, d.runtime, filepath.Join(root, "build"))
	if d.networks, err = network.New(ctx, network.Config{
		StateDir: filepath.Join(root, "network"), DB: d.db.DB(), DefaultSubnet: cfg.DefaultSubnet,
		Logger: d.log.With("component", "network"),
	}); err != nil {
		return nil, fmt.Errorf("set up networking: %w", err)
	}
	d.ctrs, err = container.New(container.Config{
		Runtime: d.runtime, RuntimeName: info.Name,
		Images: imageResolver{d.images}, Mounter: mounter{}, Specer: specer{}, Networks: networks{d.networks},
		Store: d.db, Dir: filepath.Join(root, "containers"), VolumesDir: filepath.Join(root, "volumes"), LogMaxSize: cfg.LogMaxSize,
		Logger: d.log, Notify: d.notify,
	})
	if err != nil {
		return nil, err
	}
	if err := d.ctrs.Restore(ctx); err != nil {
		return nil, fmt.Errorf("restore containers: %w", err)
	}
	// Prepared containers keep their network too, not only running ones.
	if err := d.networks.Restore(ctx, d.ctrs.NetworkAttached()); err != nil {
		return nil, fmt.Errorf("restore networking: %w", err)
	}
	if cfg.IngressAddr == "" {
		cfg.IngressAddr = ingress.DefaultAddr
	}
	if d.proxy, err = ingress.New(ingress.Config{Addr: cfg.IngressAddr, Activator: d, Logger: d.log.With("component", "ingress")}); err != nil {
		return nil, err
	}
	if err := d.proxy.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the ingress on %s: %w (choose another address with --ingress-addr)", cfg.IngressAddr, err)
	}
	_, portStr, _ := net.SplitHostPort(d.proxy.Addr().String())
	port, _ := strconv.Atoi(portStr)
	d.apps = controller.New(controller.Config{
		Store: d.db, Containers: d.ctrs, Images: imageIDResolver{d.images}, Router: d.proxy,
		Domain: cfg.Domain, URLPort: port, DrainTimeout: cfg.DrainTimeout, Logger: d.log.With("component", "apps"),
	})
	if err := d.apps.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the app controller: %w", err)
	}
	if d.listener, err = listen(cfg.Socket, SocketGroup); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), d.apps)
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.MetricsAddr != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("listen for metrics on %s: %w (choose another --metrics-addr)", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		d.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go d.metricsSrv.Serve(l)
	}
	handler := apiserver.New(apiserver.Services{
		Metrics:    metrics,
		Containers: d.ctrs, Images: &imageService{store: d.images, ctrs: d.ctrs, runtime: d.runtime, workDir: filepath.Join(root, "build")},
		Apps: d.apps, Events: d.db, Networks: d.networks, System: &system{d: d},
	}, d.log, apiserver.WithMaxUpload(cfg.MaxImageSize))
	d.server = &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	d.log.Info("skiff daemon ready", "root", root, "socket", cfg.Socket, "ingress", d.proxy.Addr().String(),
		"runtime", info.Name+" "+info.Version, "cgroups", info.CgroupLayout)
	return d, nil
}

// Serve answers API requests until ctx is done, then shuts down. The
// containers keep running.
func (d *Daemon) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- d.server.Serve(d.listener) }()
	select {
	case err := <-errc:
		d.close()
		return err
	case <-ctx.Done():
	}
	d.log.Info("shutting down; containers keep running")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.server.Shutdown(sctx)
	d.close()
	return nil
}

func (d *Daemon) close() {
	if d.server != nil {
		d.server.Close()
	}
	if d.metricsSrv != nil {
		d.metricsSrv.Close()
	}
	if d.listener != nil {
		d.listener.Close()
		os.Remove(d.cfg.Socket)
	}
	if d.apps != nil {
		d.apps.Close()
	}
	if d.proxy != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.proxy.Shutdown(sctx)
		cancel()
	}
	if d.ctrs != nil {
		d.ctrs.Close()
	}
	if d.runtime != nil {
		d.runtime.Close()
	}
	if d.networks != nil {
		d.networks.Close()
	}
	if d.db != nil {
		d.db.Close()
	}
	if d.lock != nil {
		d.lock.Close()
	}
}

// lockRoot takes an exclusive lock on root so a second daemon on the same
// root is refused.
func lockRoot(root string) (*os.File, error) {
	path := filepath.Join(root, "skiff.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		pid := strings.TrimSpace(string(b[:n]))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errdefs.Conflict("another skiff daemon (pid %s) is using the state directory %s: stop it, or give this one another --root and --socket", pid, root)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// listen opens the API socket at path with mode 0660, owned by root and,
// when a group named group exists, by that group, replacing a stale
// socket file but never one a live daemon answers on. The socket is
// bound in a private directory (0700) beside path and moved into place
// once its mode and owner are set, so it never exists at path, even for
// an instant, with the mode the umask would give it.
func listen(path, group string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, errdefs.Conflict("another daemon is listening on %s: stop it, or give this one another --socket", path)
		}
	}
	gid := -1
	if g, err := user.LookupGroup(group); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	private, err := os.MkdirTemp(dir, ".skiff")
	if err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // close removes path
	err = os.Chmod(tmp, 0o660)
	if err == nil && gid >= 0 {
		err = os.Lchown(tmp, -1, gid)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}
