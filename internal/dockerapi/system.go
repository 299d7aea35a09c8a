package dockerapi

import (
	"net/http"
	"os"
	goruntime "runtime"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

func init() { addRoutes((*Server).systemRoutes) }

// systemRoutes serves /_ping, /version and /info.
func (s *Server) systemRoutes() {
	s.handle("GET", "/_ping", s.ping)
	s.handle("GET", "/version", s.version)
	s.handle("GET", "/info", s.info)
}

// ping answers OK with the headers clients negotiate with: the API
// version, the OS and the classic builder (Builder-Version 1: skiff's
// builder takes a context tar, not a BuildKit session).
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := s.svc.System.Version()
	var uts unix.Utsname
	unix.Uname(&uts)
	kernel := unix.ByteSliceToString(uts.Release[:])
	return writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "skiff"},
		Version:       v.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		GoVersion:     v.GoVersion,
		KernelVersion: kernel,
		Components: []system.ComponentVersion{{Name: "Engine", Version: v.Version,
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "KernelVersion": kernel, "GoVersion": v.GoVersion}}},
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	in, err := s.svc.System.Info(r.Context())
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	cgroupVersion := "1"
	if in.CgroupLayout == "v2" {
		cgroupVersion = "2"
	}
	return writeJSON(w, http.StatusOK, system.Info{
		ID:                 "skiff",
		Containers:         in.Containers,
		ContainersRunning:  in.ContainersRunning,
		ContainersStopped:  in.Containers - in.ContainersRunning,
		Images:             in.Images,
		Driver:             "overlay2",
		MemoryLimit:        true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		PidsLimit:          true,
		IPv4Forwarding:     true,
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion,
		KernelVersion:      in.Kernel,
		OperatingSystem:    "skiff",
		OSVersion:          in.Version,
		OSType:             goruntime.GOOS,
		Architecture:       arch(),
		NCPU:               goruntime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      in.Root,
		Name:               host,
		ServerVersion:      in.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{in.Runtime: {Runtime: system.Runtime{Path: in.RuntimePath}}},
		DefaultRuntime:     in.Runtime,
		LiveRestoreEnabled: true,
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
	})
}

// arch is the machine's architecture in uname's words (x86_64, aarch64).
func arch() string {
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return goruntime.GOARCH
	}
	return unix.ByteSliceToString(uts.Machine[:])
}
