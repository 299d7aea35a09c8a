package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/api/policy"
	"skiff.dev/skiff/internal/apiauth"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/container"
	"skiff.dev/skiff/internal/controller"
	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/gitops"
	"skiff.dev/skiff/internal/image"
	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/isolation"
	"skiff.dev/skiff/internal/network"
	"skiff.dev/skiff/internal/network/dns"
	skruntime "skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/runc"
	"skiff.dev/skiff/internal/secrets"
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
	// IngressTLSAddr, when set, is where the ingress also serves HTTPS
	// (HTTP/2 and HTTP/1.1) for the same Apps, with certificates from
	// the Apps' files or from the local CA under Root/pki.
	IngressTLSAddr string
	// ACME, when its CA is set, gets the certificates of Apps' public
	// host names from an ACME directory (see acme.go).
	ACME ACMEConfig
	// IdentityIssuer is the issuer URL of Apps' identity tokens
	// (default https://API-ADDR with --api-addr, else
	// https://skiff.DOMAIN); IdentityTokenTTL their lifetime (default
	// DefaultIdentityTTL).
	IdentityIssuer   string
	IdentityTokenTTL time.Duration
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
	// Registry serves the image store over the OCI distribution API.
	Registry RegistryConfig
	// API, when its Addr is set, also serves the API over TCP with TLS
	// and bearer tokens (see apitcp.go).
	API APIConfig
	// Policy is the admission policy of containers and Apps.
	Policy PolicyConfig
	// DockerSocket, when set, is a unix socket serving the Docker Engine
	// API (see internal/dockerapi) over the same state.
	DockerSocket string
	// Version is reported by the API.
	Version string
	// UpgradeTimeout bounds a handover on SIGHUP, from starting the new
	// daemon to its being ready (default 1m); after it the new one is
	// killed and this one keeps serving.
	UpgradeTimeout time.Duration
	// Args are the arguments the binary is started with on SIGHUP
	// (default: this process's).
	Args   []string
	Logger *slog.Logger
}

// Daemon is a running skiff daemon.
type Daemon struct {
	cfg   Config
	log   *slog.Logger
	exe   string // the binary's path, for upgrades
	socks *sockets
	// predecessor is the daemon this one took over from (its parent), 0
	// for a daemon started afresh.
	predecessor int
	local       *localClients // what the ingress asks of its clients
	hup         chan os.Signal

	// The serving side lives as long as the process.
	proxy       *ingress.Proxy
	ingressLn   net.Listener // until Serve
	ingressAddr string
	ingressPort int
	tls         ingressTLS
	apiLn       net.Listener
	metricsLn   net.Listener
	apiTCPLn    net.Listener // until startAPI
	apiTCP      *http.Server
	dockerLn    net.Listener // until startAPI
	dockerSrv   *http.Server
	reg         *prometheus.Registry
	server      *http.Server
	apiErr      chan error
	metricsSrv  *http.Server
	registrySrv *http.Server

	// The state is let go of, and taken back, as a whole by upgrade.
	lock     *os.File
	db       *store.Store
	secrets  *secrets.Store
	images   *image.Store
	runtime  *runc.Runtime
	info     skruntime.Info
	ctrs     *container.Manager
	networks *network.Manager
	iso      *isolation.Enforcer // the isolation between Apps
	apps     atomic.Pointer[controller.Controller]
	sources  *gitops.Manager
	policy   *policy.Checker
	ids      atomic.Pointer[identities]
	// dockerEvents turns container changes into the Docker API's events
	// (nil without --docker-socket).
	dockerEvents *dockerapi.EventHub
}

// notify forwards container changes to the App controller once it exists.
func (d *Daemon) notify(c api.Container, removed bool) {
	d.dockerEvents.ContainerChanged(c, removed)
	if apps := d.apps.Load(); apps != nil {
		apps.ContainerChanged(c, removed)
	}
}

// Activate forwards the ingress's requests for replicas to the controller.
func (d *Daemon) Activate(ctx context.Context, app, revision string) {
	if apps := d.apps.Load(); apps != nil {
		apps.Activate(ctx, app, revision)
	}
}

// setDefaults fills in the zero fields and makes the paths absolute.
func (c *Config) setDefaults() error {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.Runtime == "" {
		c.Runtime = DefaultRuntime
	}
	if c.LogMaxSize == 0 {
		c.LogMaxSize = DefaultLogMaxSize
	}
	if c.IdentityTokenTTL == 0 {
		c.IdentityTokenTTL = DefaultIdentityTTL
	}
	if c.IdentityTokenTTL < 10*time.Second || c.IdentityTokenTTL > 24*time.Hour {
		return errdefs.Invalid("--identity-token-ttl %s: give a lifetime from 10s to 24h (default 1h)", c.IdentityTokenTTL)
	}
	if c.MaxImageSize <= 0 {
		c.MaxImageSize = DefaultMaxImageSize
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.IngressAddr == "" {
		c.IngressAddr = ingress.DefaultAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var err error
	if c.Root, err = filepath.Abs(c.Root); err != nil {
		return err
	}
	if c.Socket, err = filepath.Abs(c.Socket); err != nil {
		return err
	}
	return c.checkDockerSocket()
}

// New sets the daemon up: it locks the root, opens the stores, starts
// the runtime, re-adopts containers and binds the API socket and the
// ingress (or takes them from the process that started it: a daemon
// handing over, or systemd). Serve then answers requests.
func New(ctx context.Context, cfg Config) (_ *Daemon, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Registry.check(); err != nil {
		return nil, err
	}
	if err := cfg.API.check(); err != nil {
		return nil, err
	}
	if err := cfg.ACME.check(cfg.IngressTLSAddr); err != nil {
		return nil, err
	}
	chk, err := cfg.Policy.checker()
	if err != nil {
		return nil, err
	}
	root := cfg.Root
	d := &Daemon{cfg: cfg, log: cfg.Logger, exe: executable(), hup: make(chan os.Signal, 1), policy: chk, dockerEvents: newDockerEvents(cfg)}
	// A SIGHUP before Serve waits for it instead of ending the process.
	signal.Notify(d.hup, syscall.SIGHUP)
	defer func() {
		if err != nil {
			signal.Stop(d.hup)
			d.close()
		}
	}()
	if d.socks, err = inheritSockets(); err != nil {
		return nil, err
	}
	if err := d.report(stageStarted); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", root, err)
	}
	wait := time.Duration(0)
	if d.socks.handover != nil {
		wait = cfg.UpgradeTimeout
		d.predecessor = os.Getppid()
	}
	if d.lock, err = lockRoot(root, wait); err != nil {
		return nil, err
	}
	// Refuse a socket a live daemon answers on before anything starts.
	if !d.socks.has(sockAPI) {
		if c, err := net.DialTimeout("unix", cfg.Socket, time.Second); err == nil {
			c.Close()
			return nil, errdefs.Conflict("another daemon is listening on %s: stop it, or give this one another --socket", cfg.Socket)
		}
	}
	d.local = &localClients{}
	if d.proxy, err = ingress.New(ingress.Config{Addr: cfg.IngressAddr, Activator: d, Local: d.local.Local, Logger: d.log.With("component", "ingress")}); err != nil {
		return nil, err
	}
	if d.ingressLn, err = d.socks.listener(sockIngress, func() (net.Listener, error) {
		l, err := ingress.Listen(ctx, cfg.IngressAddr)
		if err != nil {
			return nil, fmt.Errorf("start the ingress on %s: %w (choose another address with --ingress-addr)", cfg.IngressAddr, err)
		}
		return l, nil
	}); err != nil {
		return nil, err
	}
	d.ingressAddr = d.ingressLn.Addr().String()
	if err := d.listenIngressTLS(ctx); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(d.ingressAddr)
	d.ingressPort, _ = strconv.Atoi(port)
	d.reg = prometheus.NewRegistry()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dnsSocks := d.socks.dns
	d.socks.dns = nil
	if err := d.openState(ctx, dnsSocks); err != nil {
		return nil, err
	}
	if err := d.startRegistry(ctx); err != nil {
		return nil, err
	}
	if err := d.listenAPI(); err != nil {
		return nil, err
	}
	if err := d.listenAPITCP(ctx); err != nil {
		return nil, err
	}
	if err := d.listenDocker(); err != nil {
		return nil, err
	}
	return d, nil
}

// listenAPI opens (or takes) the API socket and the metrics listener.
func (d *Daemon) listenAPI() (err error) {
	cfg := d.cfg
	if d.apiLn, err = d.socks.listener(sockAPI, func() (net.Listener, error) { return listen(cfg.Socket, SocketGroup) }); err != nil {
		return err
	}
	if cfg.MetricsAddr == "" && !d.socks.has(sockMetrics) {
		return nil
	}
	d.metricsLn, err = d.socks.listener(sockMetrics, func() (net.Listener, error) {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("listen for metrics on %s: %w (choose another --metrics-addr)", cfg.MetricsAddr, err)
		}
		return l, nil
	})
	return err
}

// openState opens the stores and the runtime, re-adopts the containers
// and their networks, and starts the App controller. The root is locked.
func (d *Daemon) openState(ctx context.Context, dnsSocks map[string]dns.Sockets) (err error) {
	cfg, root := d.cfg, d.cfg.Root
	defer func() {
		for _, ds := range dnsSocks {
			ds.Close() // those the network manager did not take
		}
	}()
	if d.db, err = store.Open(ctx, filepath.Join(root, "skiff.db")); err != nil {
		return err
	}
	if d.secrets, err = secrets.Open(ctx, secrets.Config{
		DB: d.db.DB(), KeyFile: filepath.Join(root, "secrets.key"), Users: secretUsers{d}, Changed: d.secretChanged,
	}); err != nil {
		return fmt.Errorf("open the secrets: %w", err)
	}
	if d.images, err = image.Open(root, image.WithMaxImageSize(cfg.MaxImageSize), image.WithUploadMaxAge(cfg.Registry.UploadMaxAge), image.WithLogger(d.log.With("component", "images"))); err != nil {
		return fmt.Errorf("open image store: %w", err)
	}
	if d.runtime, err = runc.New(ctx, runc.WithStateDir(filepath.Join(root, "runtime")), runc.WithRuntime(cfg.Runtime)); err != nil {
		return fmt.Errorf("set up the container runtime: %w", err)
	}
	if d.info, err = d.runtime.Info(ctx); err != nil {
		return err
	}
	cleanBuilds(ctx, d.runtime, filepath.Join(root, "build"))
	if d.networks, err = network.New(ctx, network.Config{
		StateDir: filepath.Join(root, "network"), DB: d.db.DB(), DefaultSubnet: cfg.DefaultSubnet,
		DNSSockets: maps.Clone(dnsSocks), Logger: d.log.With("component", "network"),
	}); err != nil {
		return fmt.Errorf("set up networking: %w", err)
	}
	d.local.nets.Store(d.networks)
	if d.iso, err = d.newIsolation(); err != nil {
		return err
	}
	d.ctrs, err = container.New(container.Config{
		Runtime: d.runtime, RuntimeName: d.info.Name,
		Images: imageResolver{d.images}, Mounter: mounter{}, Specer: specer{},
		Networks: isolatingNetworks{Networks: networks{d.networks}, iso: d.iso, labels: d.containerLabels}, Store: d.db, Dir: filepath.Join(root, "containers"), VolumesDir: filepath.Join(root, "volumes"), LogMaxSize: cfg.LogMaxSize,
		UserNSDir: filepath.Join(root, "userns"),
		Logger:    d.log, Notify: d.notify, Secrets: d.secrets,
	})
	if err != nil {
		return err
	}
	if err := d.ctrs.Restore(ctx); err != nil {
		return fmt.Errorf("restore containers: %w", err)
	}
	// Prepared containers keep their network too, not only running ones.
	if err := d.networks.Restore(ctx, d.ctrs.NetworkAttached()); err != nil {
		return fmt.Errorf("restore networking: %w", err)
	}
	if err := d.openIdentities(ctx); err != nil {
		return fmt.Errorf("open the App identities: %w", err)
	}
	if err := d.startIsolation(ctx); err != nil {
		return err
	}
	apps := controller.New(controller.Config{
		Store: d.db, Containers: d.ctrs, Images: imageIDResolver{d.images}, Networks: d.networks, Router: d.proxy,
		Domain: cfg.Domain, URLPort: d.ingressPort, DrainTimeout: cfg.DrainTimeout, BeforeStop: d.awaitPredecessor,
		Secrets: d.secrets, Identities: d.ids.Load(), Logger: d.log.With("component", "apps"), IDRanges: d.ctrs,
	})
	d.apps.Store(apps)
	if err := apps.Start(ctx); err != nil {
		return fmt.Errorf("start the app controller: %w", err)
	}
	if err := d.startSources(ctx, apps); err != nil {
		return err
	}
	return d.reg.Register(apps)
}

// AgeKeyFile is the file under the root holding the age identities that
// decrypt the sources' SOPS-encrypted secrets.
const AgeKeyFile = "age.key"

// startSources starts the GitOps sources' loops over the App controller,
// behind the admission policy.
func (d *Daemon) startSources(ctx context.Context, apps *controller.Controller) error {
	d.sources = gitops.New(gitops.Config{
		Store: d.db, Apps: admittedApps{Apps: apps, policy: d.policy}, Secrets: d.secrets, Admit: d.policy.App,
		AgeKeyFile: filepath.Join(d.cfg.Root, AgeKeyFile),
		Logger:     d.log.With("component", "gitops"),
	})
	if err := d.sources.Start(ctx); err != nil {
		return fmt.Errorf("start the gitops sources: %w", err)
	}
	return nil
}

// closeState stops the controller, the container manager, the runtime and
// networking and closes the store; containers keep running. The root
// stays locked.
func (d *Daemon) closeState() {
	if d.sources != nil {
		d.sources.Close()
		d.sources = nil
	}
	if apps := d.apps.Load(); apps != nil {
		d.reg.Unregister(apps)
		apps.Close()
		d.apps.Store(nil)
	}
	d.ids.Swap(nil).close()
	if d.ctrs != nil {
		d.ctrs.Close()
		d.ctrs = nil
	}
	if d.runtime != nil {
		d.runtime.Close()
		d.runtime = nil
	}
	if d.iso != nil {
		d.reg.Unregister(d.iso)
		d.iso.Close()
		d.iso = nil
	}
	if d.networks != nil {
		d.local.nets.Store(nil)
		d.networks.Close()
		d.networks = nil
	}
	if d.db != nil {
		d.db.Close()
		d.db = nil
	}
}

// startAPI serves the API on the API socket.
func (d *Daemon) startAPI() error {
	if d.apiLn == nil {
		l, err := d.socks.listener(sockAPI, nil)
		if err != nil {
			return err
		}
		d.apiLn = l
	}
	var apps apiserver.Apps
	if a := d.apps.Load(); a != nil {
		apps = admittedApps{Apps: a, policy: d.policy}
	}
	ctrs := admittedContainers{Containers: d.ctrs, policy: d.policy}
	images := &imageService{store: d.images, ctrs: d.ctrs, runtime: d.runtime, workDir: filepath.Join(d.cfg.Root, "build"),
		cacheMounts: filepath.Join(d.cfg.Root, "buildcache", "mounts"), buildNets: buildNetworks{d.networks}}
	handler := apiserver.New(apiserver.Services{
		Metrics:    promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}),
		Containers: ctrs, Images: images,
		Apps: apps, Events: d.db, Networks: d.networks, NetworkConnector: d.ctrs, Volumes: d.ctrs, Secrets: d.secrets, System: &system{d: d},
		Tokens: &apiauth.Manager{Store: d.db, Now: time.Now}, Sources: d.sourcesService(),
	}, d.log, apiserver.WithMaxUpload(d.cfg.MaxImageSize))
	d.server = &http.Server{Handler: d.withIdentityDocs(apiauth.AuditSocket(handler, d.db, d.log)), ReadHeaderTimeout: 30 * time.Second}
	d.apiErr = make(chan error, 1)
	go func(srv *http.Server, l net.Listener, errc chan<- error) { errc <- srv.Serve(l) }(d.server, d.apiLn, d.apiErr)
	d.apiLn = nil
	if err := d.serveDocker(ctrs, images); err != nil {
		return err
	}
	return d.serveAPITCP(handler)
}

// stopAPI stops accepting API calls (they wait on the socket) and waits
// a while for those in flight.
func (d *Daemon) stopAPI() {
	if d.server == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), apiDrainTimeout)
	defer cancel()
	if err := d.server.Shutdown(sctx); err != nil {
		d.server.Close()
	}
	d.server = nil
	if d.dockerSrv != nil {
		if err := d.dockerSrv.Shutdown(sctx); err != nil {
			d.dockerSrv.Close()
		}
		d.dockerSrv = nil
	}
	if d.apiTCP != nil {
		if err := d.apiTCP.Shutdown(sctx); err != nil {
			d.apiTCP.Close()
		}
		d.apiTCP = nil
	}
}

// Serve answers API calls, waits for the adopted replicas to be routed,
// then answers requests on the ingress too until ctx is done, then shuts
// down; the containers keep running. On SIGHUP it hands over to the binary at its path (see
// upgrade.go) and returns once its own requests in flight are done.
func (d *Daemon) Serve(ctx context.Context) error {
	defer signal.Stop(d.hup)
	if err := d.startAPI(); err != nil {
		d.close()
		return err
	}
	if d.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
		d.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go d.metricsSrv.Serve(d.metricsLn)
	}
	d.waitRouted(ctx)
	if err := d.proxy.Serve(d.ingressLn); err != nil {
		d.close()
		return err
	}
	d.ingressLn = nil
	if err := d.serveIngressTLS(); err != nil {
		d.close()
		return err
	}
	d.writePID()
	d.log.Info("skiff daemon ready", "root", d.cfg.Root, "socket", d.cfg.Socket, "ingress", d.ingressAddr,
		"ingress-tls", d.tls.addr, "ca", d.tls.caFile(),
		"runtime", d.info.Name+" "+d.info.Version, "cgroups", d.info.CgroupLayout, "pid", os.Getpid())
	if err := d.report(stageReady); err != nil {
		d.log.Warn("the daemon this one took over from is gone", "err", err)
	}
	sdNotify("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid()))
	for {
		select {
		case err := <-d.apiErr:
			d.close()
			return err
		case <-ctx.Done():
			d.log.Info("shutting down; containers keep running")
			d.stopAPI()
			d.close()
			return nil
		case <-d.hup:
			done, err := d.upgrade(ctx)
			if err != nil {
				d.close()
				return err
			}
			if done {
				d.finishHandover()
				return nil
			}
		}
	}
}

// finishHandover stops accepting on the sockets the new daemon now
// serves, waits for the requests in flight (at most DrainTimeout) and
// releases the rest, leaving the sockets, the pid file and the
// containers to the new daemon.
func (d *Daemon) finishHandover() {
	timeout := d.cfg.DrainTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Requests held for a replica cannot be released here any more (the
	// controllers are gone): they go on to the new daemon.
	d.proxy.HandOver()
	if err := d.proxy.Shutdown(sctx); err != nil {
		d.log.Warn("requests still in flight were cut", "err", err)
	}
	if d.metricsSrv != nil {
		d.metricsSrv.Shutdown(sctx)
	}
	d.socks.close()
	d.log.Info("handed over; exiting")
}

// waitRouted returns once the ingress routes to every replica the
// previous daemon routed to (or, on a fresh start, every running
// replica), or after routeWait: requests that arrive meanwhile wait on
// the listening socket instead of finding no route.
func (d *Daemon) waitRouted(ctx context.Context) {
	want := map[string]bool{}
	running := map[string]bool{}
	for _, c := range d.ctrs.List(ctx, false) {
		if c.State.Status == api.StatusRunning && c.Config.Labels[controller.LabelApp] != "" && c.Config.Labels[controller.LabelPrewarm] != "true" {
			running[c.ID] = true
		}
	}
	limit := routeWait
	if d.socks.handover != nil {
		for _, id := range d.socks.routed {
			if running[id] {
				want[id] = true
			}
		}
	} else {
		want = running
		limit = routeWaitFresh
	}
	if len(want) == 0 {
		return
	}
	deadline := time.Now().Add(limit)
	for {
		missing := 0
		routed := d.proxy.EndpointIDs()
		for id := range want {
			if _, ok := slices.BinarySearch(routed, id); !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.log.Warn("accepting requests before every adopted replica is routed", "missing", missing, "waited", limit)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close releases everything; a plain stop, so the socket file and the pid
// file go (unless systemd owns the socket).
func (d *Daemon) close() {
	if d.server != nil {
		d.server.Close()
	}
	if d.metricsSrv != nil {
		d.metricsSrv.Close()
	}
	if d.apiTCP != nil {
		d.apiTCP.Close()
	}
	if d.dockerSrv != nil {
		d.dockerSrv.Close()
	}
	d.stopRegistry()
	d.tls.acme.stop()
	for _, l := range []net.Listener{d.apiLn, d.ingressLn, d.tls.ln, d.metricsLn, d.apiTCPLn, d.dockerLn} {
		if l != nil {
			l.Close()
		}
	}
	if d.socks != nil {
		if d.socks.has(sockAPI) && !d.socks.systemd {
			os.Remove(d.cfg.Socket)
		}
		d.removeDockerSocket()
		d.socks.close()
	}
	if apps := d.apps.Load(); apps != nil {
		apps.Close()
	}
	if d.proxy != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.proxy.Shutdown(sctx)
		cancel()
	}
	d.closeState()
	if d.lock != nil {
		d.removePID()
		d.lock.Close()
	}
}

// lockRoot takes an exclusive lock on root so a second daemon on the same
// root is refused; it waits up to wait for a daemon handing over to let
// go of it.
func lockRoot(root string, wait time.Duration) (*os.File, error) {
	path := filepath.Join(root, "skiff.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	deadline := time.Now().Add(wait)
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	for errors.Is(err, syscall.EWOULDBLOCK) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
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

// sourcesService is the GitOps service the API serves, nil before the
// state is open.
func (d *Daemon) sourcesService() apiserver.Sources {
	if d.sources == nil {
		return nil
	}
	return d.sources
}
