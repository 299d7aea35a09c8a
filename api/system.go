package api

// VersionInfo is the body of GET /v1/version.
type VersionInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"apiVersion"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// Info is the body of GET /v1/info.
type Info struct {
	Root           string `json:"root"`
	Socket         string `json:"socket"`
	Runtime        string `json:"runtime"`
	RuntimePath    string `json:"runtimePath"`
	RuntimeVersion string `json:"runtimeVersion"`
	Monitor        string `json:"monitor"`
	MonitorVersion string `json:"monitorVersion"`
	// CgroupLayout is "v1", "v2" or "hybrid".
	CgroupLayout      string `json:"cgroupLayout"`
	Kernel            string `json:"kernel"`
	Containers        int    `json:"containers"`
	ContainersRunning int    `json:"containersRunning"`
	Images            int    `json:"images"`
	// BuildCacheSize is the bytes the build cache holds: its layer
	// blobs (also those images share) and its cache mounts.
	BuildCacheSize int64 `json:"buildCacheSize"`
	// IngressAddr is where the HTTP ingress listens.
	IngressAddr string `json:"ingressAddr"`
	// IngressTLSAddr is where the ingress serves HTTPS; empty when it
	// does not.
	IngressTLSAddr string `json:"ingressTLSAddr,omitempty"`
	// CAFile is the path, on the daemon's machine, of the local CA's
	// root certificate (PEM) that HTTPS clients trust; empty without
	// HTTPS.
	CAFile string `json:"caFile,omitempty"`
	// CACert is that root certificate, PEM-encoded (what `skiff ca
	// export` writes); empty without HTTPS.
	CACert  string `json:"caCert,omitempty"`
	Version string `json:"version"`
}
