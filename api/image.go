package api

import "time"

// Image is an image in the local store as the API returns it.
type Image struct {
	// ID is the digest of the image's config ("sha256:...").
	ID string `json:"id"`
	// Digest is the digest of the image's manifest.
	Digest string `json:"digest"`
	// Tags are the fully qualified references that point at this image.
	Tags    []string  `json:"tags"`
	Created time.Time `json:"created,omitzero"`
	// Size is the sum of the compressed layer sizes.
	Size         int64       `json:"size"`
	Architecture string      `json:"architecture,omitempty"`
	OS           string      `json:"os,omitempty"`
	Layers       []string    `json:"layers,omitempty"` // diff IDs
	Config       ImageConfig `json:"config"`
}

// ImageConfig is the runnable part of an image's configuration.
type ImageConfig struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	// Healthcheck is the image's HEALTHCHECK, if it has one.
	Healthcheck *HealthConfig `json:"healthcheck,omitempty"`
}

// HealthConfig is a health check: an image's HEALTHCHECK or a
// container's. Test is ["NONE"], ["CMD", args...] or ["CMD-SHELL",
// command]; zero durations and retries mean Docker's defaults.
type HealthConfig struct {
	Test []string `json:"test,omitempty"`
	// Interval is the time between checks (default 30s).
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout bounds each check (default 30s); a check running longer
	// is killed and counts as failed.
	Timeout time.Duration `json:"timeout,omitempty"`
	// StartPeriod is how long after the start failures do not count
	// while no check has passed yet (default 0).
	StartPeriod time.Duration `json:"startPeriod,omitempty"`
	// StartInterval is the time between checks during StartPeriod
	// (default 5s).
	StartInterval time.Duration `json:"startInterval,omitempty"`
	// Retries is how many failures in a row make the container
	// unhealthy (default 3).
	Retries int `json:"retries,omitempty"`
}

// ImageTagRequest is the body of POST /v1/images/tag.
type ImageTagRequest struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// ImagePullRequest is the body of POST /v1/images/pull and /v1/images/push.
type ImagePullRequest struct {
	Ref string `json:"ref"`
	// Insecure allows plain HTTP to the registry (loopback registries are
	// always allowed plain HTTP).
	Insecure bool `json:"insecure,omitempty"`
	// Platform selects an image of a multi-platform index, as "os/arch" or
	// "os/arch/variant"; default linux/<the daemon's architecture>.
	Platform string `json:"platform,omitempty"`
}

// ImageRemoveResponse lists what `image rm` removed.
type ImageRemoveResponse struct {
	Untagged []string `json:"untagged,omitempty"`
	Deleted  []string `json:"deleted,omitempty"`
}

// ImagePruneResponse lists what `image prune` removed.
type ImagePruneResponse struct {
	BlobsDeleted  int   `json:"blobsDeleted"`
	LayersDeleted int   `json:"layersDeleted"`
	BytesFreed    int64 `json:"bytesFreed"`
	// BuildCacheEntriesDeleted counts the build cache entries dropped
	// (image prune empties the build cache too).
	BuildCacheEntriesDeleted int `json:"buildCacheEntriesDeleted,omitempty"`
}

// BuildCachePruneResponse lists what `builder prune` removed.
type BuildCachePruneResponse struct {
	EntriesDeleted int   `json:"entriesDeleted"`
	MountsDeleted  int   `json:"mountsDeleted"` // RUN --mount=type=cache directories
	BytesFreed     int64 `json:"bytesFreed"`
}

// ImageBuildResponse is the final object of a build.
type ImageBuildResponse struct {
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
}

// ImageImportRootfsOptions say what image a root filesystem tar becomes
// (skiff image import --rootfs, as docker import).
type ImageImportRootfsOptions struct {
	// Ref names the image, NAME[:TAG].
	Ref string `json:"ref"`
	// Changes are Dockerfile instructions applied to the image's config:
	// CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or
	// STOPSIGNAL.
	Changes []string `json:"changes,omitempty"`
	// Message is the comment of the image's history entry.
	Message string `json:"message,omitempty"`
}
