package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/container"
	"skiff.dev/skiff/internal/image"
	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/unpack"
	"skiff.dev/skiff/internal/network"
	"skiff.dev/skiff/internal/runtime/oci"
	"skiff.dev/skiff/internal/runtime/rootfs"
)

// imageResolver adapts the image store to the container manager.
type imageResolver struct{ s *image.Store }

func (r imageResolver) Resolve(ctx context.Context, ref string) (*container.Image, error) {
	res, err := r.s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &container.Image{Ref: res.Ref, ID: res.ID, Layers: res.Layers, Config: res.Config.Config}, nil
}

// imageIDResolver pins App revisions to image IDs.
type imageIDResolver struct{ s *image.Store }

func (r imageIDResolver) ResolveID(ctx context.Context, ref string) (id, digest string, err error) {
	res, err := r.s.Resolve(ctx, ref)
	if err != nil {
		return "", "", err
	}
	return res.ID, res.Digest, nil
}

// networks adapts the network manager to the container manager.
type networks struct{ m *network.Manager }

func (n networks) Check(ctx context.Context, primary api.NetworkAttachment, extra []api.NetworkAttachment, ports []api.PortMapping) error {
	if err := n.m.Check(ctx, primary.Network, primary.IP, ports); err != nil {
		return err
	}
	return n.m.CheckAttachments(ctx, primary.Network, extra)
}
func (n networks) NetNSPath(id string) string { return n.m.NetNSPath(id) }
func (n networks) Setup(ctx context.Context, req container.NetworkRequest) (*api.NetworkSettings, error) {
	return n.m.Setup(ctx, network.SetupRequest{ContainerID: req.ContainerID, Name: req.Name, Hostname: req.Hostname,
		Network: req.Network, IP: req.IP, Aliases: req.Aliases, Ports: req.Ports, Extra: req.Extra, FilesDir: req.FilesDir, Created: req.Created, MakeNetNS: req.MakeNetNS,
		Files: network.Files{ExtraHosts: req.ExtraHosts, DNS: req.DNS, DNSSearch: req.DNSSearch, DNSOptions: req.DNSOptions}})
}
func (n networks) Teardown(ctx context.Context, id string) error { return n.m.Teardown(ctx, id) }
func (n networks) Connect(ctx context.Context, id string, x api.NetworkAttachment) (*api.NetworkSettings, error) {
	return n.m.Connect(ctx, id, x)
}
func (n networks) Disconnect(ctx context.Context, id, network string) (*api.NetworkSettings, error) {
	return n.m.Disconnect(ctx, id, network)
}

// buildNetworks attaches build containers to the default network.
type buildNetworks struct{ m *network.Manager }

var _ build.Networks = buildNetworks{}

func (n buildNetworks) Setup(ctx context.Context, id, hostname, filesDir string) (string, error) {
	set, err := n.m.Setup(ctx, network.SetupRequest{ContainerID: id, Hostname: hostname, Network: api.DefaultNetwork, FilesDir: filesDir})
	if err != nil {
		return "", err
	}
	return set.NetNS, nil
}
func (n buildNetworks) Teardown(ctx context.Context, id string) error { return n.m.Teardown(ctx, id) }

type mounter struct{}

func (mounter) Mount(lowers []string, upper, work, target string) error {
	return rootfs.Mount(lowers, upper, work, target)
}
func (mounter) Unmount(target string) error { return rootfs.Unmount(target) }

// specer builds specs with the oci package.
type specer struct{}

func (specer) Spec(in container.SpecInput) (*specs.Spec, error) {
	spec, err := oci.Spec(oci.Input{
		ID: in.ID, Hostname: in.Hostname, Rootfs: in.Rootfs, Image: in.Image, Config: in.Config,
		NetNS: in.NetNS, Mounts: in.Mounts, HostRlimits: true, HostCapabilities: true, HostArches: true,
		IDMap: in.IDMap, UserNS: in.UserNS,
	})
	if err == nil && in.Config.Init {
		err = addInit(spec)
	}
	if err != nil || !in.HostNetwork {
		return spec, err
	}
	// Share the host's network namespace: drop ours.
	var ns []specs.LinuxNamespace
	for _, n := range spec.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace {
			ns = append(ns, n)
		}
	}
	spec.Linux.Namespaces = ns
	return spec, nil
}

func (specer) Exec(spec *specs.Spec, rootfsDir string, req api.ExecRequest) (*specs.Process, error) {
	if spec.Process == nil {
		return nil, fmt.Errorf("container spec has no process")
	}
	p := *spec.Process
	p.Terminal = req.Tty
	p.ConsoleSize = nil
	if req.Tty && req.ConsoleSize != nil {
		p.ConsoleSize = &specs.Box{Height: req.ConsoleSize.Height, Width: req.ConsoleSize.Width}
	}
	p.Args = req.Cmd
	reqEnv := req.Env
	if req.Tty && !slices.ContainsFunc(reqEnv, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		reqEnv = append([]string{"TERM=xterm"}, reqEnv...)
	}
	env, err := oci.Env(spec.Process.Env, reqEnv, spec.Hostname)
	if err != nil {
		return nil, err
	}
	p.Env = env
	if req.WorkingDir != "" {
		if !strings.HasPrefix(req.WorkingDir, "/") {
			return nil, errdefs.Invalid("exec working directory %q must be an absolute path", req.WorkingDir)
		}
		p.Cwd = req.WorkingDir
	}
	if req.User != "" {
		u, err := oci.ResolveUser(rootfsDir, req.User)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	return &p, nil
}

// imageService serves the image API: the store, the builder, and the
// containers' use of images.
type imageService struct {
	store   *image.Store
	ctrs    *container.Manager
	runtime build.Runtime // runs RUN steps
	workDir string        // where builds unpack layers and run steps

	// RUN --mount=type=cache directories and build networking.
	cacheMounts string         // <root>/buildcache/mounts
	buildNets   build.Networks // attaches RUN steps to the default network
}

var _ apiserver.Images = (*imageService)(nil)

func (s *imageService) List(ctx context.Context) ([]api.Image, error) { return s.store.List(ctx) }
func (s *imageService) Inspect(ctx context.Context, ref string) (api.Image, error) {
	return s.store.Inspect(ctx, ref)
}
func (s *imageService) Import(ctx context.Context, r io.Reader) ([]api.Image, error) {
	return s.store.Import(ctx, r)
}

// ImportRootfs applies the --change instructions to an empty config and
// imports the root filesystem tar r as a one-layer image.
func (s *imageService) ImportRootfs(ctx context.Context, r io.Reader, opts api.ImageImportRootfsOptions) (api.Image, error) {
	if opts.Ref == "" {
		return api.Image{}, errdefs.Invalid("import --rootfs needs a name for the image: give NAME[:TAG]")
	}
	cfg, err := build.ApplyChanges(v1.Config{}, opts.Changes)
	if err != nil {
		return api.Image{}, err
	}
	return s.store.ImportRootfs(ctx, r, image.RootfsImport{Ref: opts.Ref, Config: cfg, Message: opts.Message})
}
func (s *imageService) Pull(ctx context.Context, req api.ImagePullRequest) (api.Image, error) {
	return s.store.Pull(ctx, req.Ref, image.RemoteOptions{Insecure: req.Insecure, Platform: req.Platform})
}
func (s *imageService) Push(ctx context.Context, req api.ImagePullRequest) error {
	return s.store.Push(ctx, req.Ref, image.RemoteOptions{Insecure: req.Insecure, Platform: req.Platform})
}
func (s *imageService) Tag(ctx context.Context, src, dst string) error {
	return s.store.Tag(ctx, src, dst)
}
func (s *imageService) Remove(ctx context.Context, ref string, force bool) (api.ImageRemoveResponse, error) {
	defer s.ctrs.HoldImages()()
	res, err := s.store.Remove(ctx, ref, force, s.ctrs.ImageInUse)
	if errors.Is(err, errdefs.ErrConflict) {
		if img, ierr := s.store.Inspect(ctx, ref); ierr == nil {
			if names := s.ctrs.ContainersUsingImage(img.ID); len(names) > 0 {
				return res, errdefs.Conflict("image %s is used by container %s: remove the container first (skiff rm %s), or untag the image with skiff image rm -f %s (the container keeps it)",
					ref, strings.Join(names, ", "), strings.Join(names, " "), ref)
			}
		}
	}
	return res, err
}
func (s *imageService) Prune(ctx context.Context) (api.ImagePruneResponse, error) {
	defer s.ctrs.HoldImages()()
	return s.store.Prune(ctx, s.ctrs.ImageInUse)
}

// Build unpacks the uploaded context into a temporary directory (with the
// same safety checks as image layers) and runs the builder over it.
func (s *imageService) Build(ctx context.Context, contextTar io.Reader, opts apiserver.BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
	if len(opts.Tags) == 0 {
		return api.ImageBuildResponse{}, errdefs.Invalid("a build needs at least one tag: give -t NAME")
	}
	dir, err := os.MkdirTemp("", "skiff-build-")
	if err != nil {
		return api.ImageBuildResponse{}, err
	}
	// Removed after the answer: deleting a large context's files would
	// delay it (a no-op rebuild from the cache is otherwise quick).
	defer func() { go os.RemoveAll(dir) }()
	if _, err := unpack.Apply(ctx, dir, contextTar, unpack.Options{}); err != nil {
		return api.ImageBuildResponse{}, fmt.Errorf("build context: %w", err)
	}
	df := opts.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	bopts := build.Options{
		ContextDir: dir, Dockerfile: filepath.Join(dir, filepath.Clean("/"+df)),
		BuildArgs: opts.BuildArgs, Target: opts.Target, Progress: progress,
		Runtime: s.runtime, WorkDir: s.workDir,
		CacheDir: s.cacheMounts, Secrets: opts.Secrets, Network: opts.Network, Networks: s.buildNets,
	}
	if opts.Events != nil { // progress as events, not lines
		bopts.Progress, bopts.Events = nil, opts.Events
	}
	bopts.Labels = opts.Labels
	// The layer cache.
	cache := s.store.BuildCache()
	bopts.Cache, bopts.NoCache = cache, opts.NoCache
	bopts.Pull, bopts.Puller = opts.Pull, puller{s.store}
	// The store takes the layers the build unpacked.
	var saved api.Image
	bopts.Commit = func(ctx context.Context, img v1.Image) (err error) {
		saved, err = s.store.Save(ctx, img, opts.Tags...)
		return err
	}
	_, err = build.Build(ctx, bopts, s.store)
	if ferr := cache.Flush(); ferr != nil {
		fmt.Fprintf(progress, "WARNING: recording the build cache's use: %v\n", ferr)
	}
	if err != nil {
		return api.ImageBuildResponse{}, err
	}
	return api.ImageBuildResponse{ID: saved.ID, Tags: saved.Tags}, nil
}

// PruneBuildCache drops the build cache's entries and cache mounts not
// used for olderThan (all of them when it is 0) and the blobs only they
// kept.
func (s *imageService) PruneBuildCache(ctx context.Context, olderThan time.Duration) (api.BuildCachePruneResponse, error) {
	var before time.Time
	if olderThan > 0 {
		before = time.Now().Add(-olderThan)
	}
	defer s.ctrs.HoldImages()()
	res, err := s.store.BuildCache().Prune(ctx, before)
	return api.BuildCachePruneResponse{EntriesDeleted: res.Entries, MountsDeleted: res.Mounts, BytesFreed: res.BytesFreed}, err
}

var _ apiserver.BuildCache = (*imageService)(nil)
var _ build.Cache = (*image.BuildCache)(nil)

// puller pulls a build's FROM images (--pull) through the store. Names
// under localhost/ are local by convention (skiff's builds and imports
// make them) and are not pulled.
type puller struct{ store *image.Store }

func (p puller) Pull(ctx context.Context, ref string) error {
	if r, err := image.ParseReference(ref); err == nil && r.Domain == "localhost" {
		return nil
	}
	_, err := p.store.Pull(ctx, ref, image.RemoteOptions{})
	return err
}

// system answers version and info.
type system struct{ d *Daemon }

func (s *system) Version() api.VersionInfo {
	return api.VersionInfo{Version: s.d.cfg.Version, APIVersion: api.Version, GoVersion: goruntime.Version(), OS: goruntime.GOOS, Arch: goruntime.GOARCH}
}

func (s *system) Info(ctx context.Context) (api.Info, error) {
	ri, err := s.d.runtime.Info(ctx)
	if err != nil {
		return api.Info{}, err
	}
	n, err := s.d.images.Count(ctx)
	if err != nil {
		return api.Info{}, err
	}
	total, running := s.d.ctrs.Counts()
	var uts unix.Utsname
	unix.Uname(&uts)
	return api.Info{
		Root: s.d.cfg.Root, Socket: s.d.cfg.Socket,
		Runtime: ri.Name, RuntimePath: ri.Path, RuntimeVersion: ri.Version,
		Monitor: ri.Monitor, MonitorVersion: ri.MonitorVersion, CgroupLayout: ri.CgroupLayout,
		Kernel:         unix.ByteSliceToString(uts.Release[:]),
		IngressAddr:    s.d.ingressAddr,
		IngressTLSAddr: s.d.tls.addr, CAFile: s.d.tls.caFile(), CACert: s.d.tls.caCert(),
		Containers: total, ContainersRunning: running, Images: n, Version: s.d.cfg.Version,
		BuildCacheSize: s.d.images.BuildCache().Size(),
	}, nil
}

// cleanBuilds removes what builds interrupted by a daemon crash left in
// dir: their step containers, root filesystem and RUN --mount overlays,
// and directories (with the secrets files of their steps). Their network
// attachments go when networking is restored.
func cleanBuilds(ctx context.Context, rt build.Runtime, dir string) {
	steps, _ := filepath.Glob(filepath.Join(dir, "run-*", "steps", "*"))
	for _, step := range steps {
		rt.Delete(ctx, filepath.Base(step))
		rootfs.Unmount(filepath.Join(step, "rootfs"))
		merged, _ := filepath.Glob(filepath.Join(step, "mounts", "*", "merged"))
		for _, m := range merged {
			rootfs.Unmount(m)
		}
	}
	os.RemoveAll(dir)
}

// addInit makes spec run the daemon's own executable as the container's
// init (--init).
func addInit(spec *specs.Spec) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding skiff's executable for --init: %w", err)
	}
	return oci.AddInit(spec, exe)
}
