package dockerapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/volume"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/lazyregexp"
)

// volumeAPI serves /volumes over skiff's named volumes (driver "local").
type volumeAPI struct{ volumes apiserver.Volumes }

func init() {
	addRoutes(func(s *Server) {
		if s.svc.Volumes == nil {
			return
		}
		a := &volumeAPI{volumes: s.svc.Volumes}
		s.handle("GET", "/volumes", a.list)
		s.handle("POST", "/volumes/create", a.create)
		s.handle("POST", "/volumes/prune", a.prune)
		s.handle("GET", "/volumes/{name}", a.inspect)
		s.handle("DELETE", "/volumes/{name}", a.remove)
	})
}

// anonymousRE matches the names docker gives volumes created without
// one; prune removes only those unless asked for all.
var anonymousRE = lazyregexp.New(`^[0-9a-f]{64}$`)

// dockerVolume is v as Docker describes a volume.
func dockerVolume(v api.Volume) volume.Volume {
	labels := v.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	out := volume.Volume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Labels: labels,
		Scope: "local", Options: map[string]string{}}
	if !v.Created.IsZero() {
		out.CreatedAt = v.Created.Format(time.RFC3339)
	}
	return out
}

func (a *volumeAPI) create(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Driver != "" && req.Driver != "local" {
		return errdefs.Invalid("volume driver %q is not served: skiff's volumes are local directories (driver local)", req.Driver)
	}
	if len(req.DriverOpts) > 0 {
		return errdefs.Invalid("volume driver options are not served: skiff's volumes are plain directories; drop --opt")
	}
	if req.ClusterVolumeSpec != nil {
		return errdefs.Invalid("cluster volumes are not served")
	}
	if req.Name == "" {
		var b [32]byte
		rand.Read(b[:])
		req.Name = hex.EncodeToString(b[:])
	} else if v, err := a.volumes.VolumeInspect(r.Context(), req.Name); err == nil {
		// docker volume create of an existing name answers the volume.
		return writeJSON(w, http.StatusCreated, dockerVolume(v))
	}
	v, err := a.volumes.VolumeCreate(r.Context(), api.VolumeCreateRequest{Name: req.Name, Labels: req.Labels})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, dockerVolume(v))
}

func (a *volumeAPI) list(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("name", "label", "label!", "dangling", "driver"); err != nil {
		return err
	}
	dangling, err := filterBool(f, "dangling", false)
	if err != nil {
		return err
	}
	vols, err := a.volumes.VolumeList(r.Context())
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range vols {
		if !f.matchAny("name", func(s string) bool { return strings.Contains(v.Name, s) }) ||
			!f.matchAny("driver", func(s string) bool { return s == "local" }) ||
			!f.matchLabels("label", v.Labels) || !f.matchLabels("label!", v.Labels) ||
			(f.has("dangling") && dangling != (len(v.UsedBy) == 0)) {
			continue
		}
		out.Volumes = append(out.Volumes, dockerVolume(v))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *volumeAPI) inspect(w http.ResponseWriter, r *http.Request) error {
	v, err := a.volumes.VolumeInspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, dockerVolume(v))
}

func (a *volumeAPI) remove(w http.ResponseWriter, r *http.Request) error {
	err := a.volumes.VolumeRemove(r.Context(), r.PathValue("name"))
	if errors.Is(err, errdefs.ErrNotFound) && boolQuery(r, "force") {
		err = nil // docker volume rm -f of a missing volume succeeds
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// prune removes the volumes no container uses that match the label
// filters: the anonymous ones only, unless the all filter is true or the
// client speaks an API older than 1.42 (where prune took every one).
func (a *volumeAPI) prune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("label", "label!", "all"); err != nil {
		return err
	}
	all, err := filterBool(f, "all", versionBefore(r, "1.42"))
	if err != nil {
		return err
	}
	vols, err := a.volumes.VolumeList(r.Context())
	if err != nil {
		return err
	}
	report := volume.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vols {
		if len(v.UsedBy) > 0 || (!all && !anonymousRE.MatchString(v.Name)) ||
			!f.matchLabels("label", v.Labels) || !f.matchLabels("label!", v.Labels) {
			continue
		}
		size := dirSize(v.Mountpoint)
		err := a.volumes.VolumeRemove(r.Context(), v.Name)
		if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
			continue // taken meanwhile, or gone
		}
		if err != nil {
			return err
		}
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		report.SpaceReclaimed += uint64(max(size, 0))
	}
	return writeJSON(w, http.StatusOK, report)
}
