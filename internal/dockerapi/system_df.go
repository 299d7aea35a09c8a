package dockerapi

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func init() {
	addRoutes(func(s *Server) {
		s.handle("GET", "/system/df", s.diskUsage)
	})
}

// diskUsageV1 is the body of GET /system/df before API 1.52 (docker CLI
// 28 speaks 1.51): the typed lists of the newer system.DiskUsage, at the
// top level.
type diskUsageV1 struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// diskUsage is GET /system/df: images (their sizes and the containers
// using each), containers, volumes (sizes and users) and the build cache,
// or those the type parameters name.
func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) error {
	want := map[system.DiskUsageObject]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch o := system.DiskUsageObject(t); o {
		case system.ContainerObject, system.ImageObject, system.VolumeObject, system.BuildCacheObject:
			want[o] = true
		default:
			return errdefs.Invalid("system df type %q: give container, image, volume or build-cache", t)
		}
	}
	all := len(want) == 0
	ctx := r.Context()
	out := diskUsageV1{Images: []image.Summary{}, Containers: []container.Summary{}, Volumes: []volume.Volume{}, BuildCache: []build.CacheRecord{}}
	var ctrs []api.Container
	if s.svc.Containers != nil {
		ctrs = s.svc.Containers.List(ctx, true)
	}
	if (all || want[system.ImageObject]) && s.svc.Images != nil {
		imgs, err := s.svc.Images.List(ctx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			sum := imageSummary(img)
			sum.Containers = int64(countFunc(ctrs, func(c api.Container) bool { return c.ImageID == img.ID }))
			out.Images = append(out.Images, sum)
			out.LayersSize += img.Size
		}
	}
	if all || want[system.ContainerObject] {
		for _, c := range ctrs {
			out.Containers = append(out.Containers, dfContainer(c))
		}
	}
	if (all || want[system.VolumeObject]) && s.svc.Volumes != nil {
		vols, err := s.svc.Volumes.VolumeList(ctx)
		if err != nil {
			return err
		}
		for _, v := range vols {
			dv := dockerVolume(v)
			dv.UsageData = &volume.UsageData{RefCount: int64(len(v.UsedBy)), Size: dirSize(v.Mountpoint)}
			out.Volumes = append(out.Volumes, dv)
		}
	}
	if (all || want[system.BuildCacheObject]) && s.svc.System != nil {
		info, err := s.svc.System.Info(ctx)
		if err != nil {
			return err
		}
		if info.BuildCacheSize > 0 {
			out.BuildCache = append(out.BuildCache, build.CacheRecord{ID: "skiff-build-cache", Type: "regular",
				Description: "skiff's layer cache and RUN --mount=type=cache directories", Size: info.BuildCacheSize})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// dfContainer is the part of a container's summary system df reads.
func dfContainer(c api.Container) container.Summary {
	state := container.ContainerState(c.State.Status)
	return container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.ImageID,
		Command: strings.Join(c.Process, " "), Created: c.Created.Unix(), State: state, Status: c.State.Status,
		Labels: c.Config.Labels}
}

func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

// dirSize is the bytes of the regular files under dir, -1 if it cannot
// be read.
func dirSize(dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}
