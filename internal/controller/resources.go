package controller

import (
	"slices"
	"strconv"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// Labels skiff puts on replica containers.
const (
	LabelApp      = "skiff.dev/app"
	LabelRevision = "skiff.dev/revision"
	// LabelPrewarm marks containers made for the prewarm pool.
	LabelPrewarm = "skiff.dev/prewarm"
)

// containerRequest builds the create request of one replica of rev
// (pure). imageID pins the image the revision resolved to.
func containerRequest(a api.App, rev api.Revision, imageID, name string) (api.ContainerCreateRequest, error) {
	res, err := app.ContainerResources(rev.Spec.Resources)
	if err != nil {
		return api.ContainerCreateRequest{}, err
	}
	port := rev.Spec.Port
	if port == 0 {
		port = 8080
	}
	env := []string{"PORT=" + strconv.Itoa(port), "SKIFF_APP=" + a.Metadata.Name, "SKIFF_REVISION=" + rev.Name}
	var secretEnv []api.SecretEnvVar
	for _, e := range rev.Spec.Env {
		if e.SecretRef == "" {
			env = append(env, e.Name+"="+e.Value)
			continue
		}
		secret, key, _ := strings.Cut(e.SecretRef, "/")
		version, ok := rev.Spec.SecretVersions[secret]
		if !ok {
			return api.ContainerCreateRequest{}, errdefs.NotFound("spec.env %s: secret %q does not exist: create it with skiff secret create %s --from-literal %s=VALUE", e.Name, secret, secret, key)
		}
		secretEnv = append(secretEnv, api.SecretEnvVar{Name: e.Name, Secret: secret, Key: key, Version: version})
	}
	cfg := api.ContainerConfig{
		Image:          imageID,
		Cmd:            rev.Spec.Args,
		Env:            env,
		SecretEnv:      secretEnv,
		Labels:         map[string]string{LabelApp: a.Metadata.Name, LabelRevision: rev.Name},
		Resources:      res,
		RestartPolicy:  api.RestartPolicy{Name: api.RestartAlways},
		Network:        api.DefaultNetwork,
		NetworkAliases: []string{a.Metadata.Name, rev.Name},
		// The App's probes check its replicas: not the image's HEALTHCHECK.
		Healthcheck: &api.HealthConfig{Test: []string{"NONE"}},
	}
	cfg.ExtraNetworks = containerNetworks(rev.Spec.Networks)
	for i := range cfg.ExtraNetworks {
		cfg.ExtraNetworks[i].Aliases = append([]string{a.Metadata.Name}, cfg.ExtraNetworks[i].Aliases...)
	}
	if sec := rev.Spec.Security; sec.RunAsUser != nil || sec.ReadOnlyRootFilesystem || !sec.Capabilities.IsZero() {
		if sec.RunAsUser != nil {
			cfg.User = strconv.FormatInt(*sec.RunAsUser, 10)
		}
		cfg.ReadonlyRootfs = sec.ReadOnlyRootFilesystem
		cfg.CapAdd, cfg.CapDrop = sec.Capabilities.Add, sec.Capabilities.Drop
	}
	if len(rev.Spec.Command) > 0 {
		cfg.Entrypoint = rev.Spec.Command
	}
	for _, v := range rev.Spec.Volumes {
		if v.Secret == nil {
			cfg.Mounts = append(cfg.Mounts, api.Mount{Type: api.MountVolume, Source: v.Name, Target: v.MountPath, ReadOnly: v.ReadOnly})
			continue
		}
		version, ok := rev.Spec.SecretVersions[v.Secret.Name]
		if !ok {
			return api.ContainerCreateRequest{}, errdefs.NotFound("spec.volumes %s: secret %q does not exist: create it with skiff secret create %s --from-literal KEY=VALUE", v.Name, v.Secret.Name, v.Secret.Name)
		}
		cfg.SecretMounts = append(cfg.SecretMounts, api.SecretMount{Target: v.MountPath, Secret: v.Secret.Name, Version: version, Items: slices.Clone(v.Secret.Items)})
	}
	req := api.ContainerCreateRequest{Name: name, Config: cfg}
	if h := rev.Spec.Security.HostUsers; h == nil || !*h {
		req.Config.UserNS = api.UserNSAuto
		req.IDRangeOwner = idRangeOwner(a.Metadata.Name)
	}
	return req, nil
}

// containerNetworks is the attachments of a revision's further networks,
// with their aliases (pure).
func containerNetworks(ns []api.AppNetworkAttachment) []api.NetworkAttachment {
	var out []api.NetworkAttachment
	for _, n := range ns {
		out = append(out, api.NetworkAttachment{Network: n.Name, Aliases: slices.Clone(n.Aliases)})
	}
	return out
}

// idRangeOwner owns the user namespace id range that every replica of
// App name shares.
func idRangeOwner(name string) string { return "app/" + name }

// target is one resolved traffic target (see app.ResolveTraffic).
type target = app.Target

// scaleBounds returns the App's min and max replicas (defaults applied).
func scaleBounds(a api.App) (lo, hi int) { return app.ScaleBounds(a.Spec.Scale) }

// desiredReplicas decides how many replicas each revision should have
// (pure). Revisions receiving traffic get want (what the autoscaler asks,
// or min) bounded by min and max; the latest created revision, while it
// is not ready, gets enough replicas to become ready; every other revision
// gets none.
func desiredReplicas(a api.App, targets []target, latestCreated string, latestReady bool, want map[string]int) map[string]int {
	lo, hi := scaleBounds(a)
	out := map[string]int{}
	for _, t := range targets {
		if t.Percent == 0 && t.Tag == "" {
			continue
		}
		n, ok := want[t.Revision]
		if !ok {
			n = lo
		}
		out[t.Revision] = max(out[t.Revision], min(max(n, lo), hi))
	}
	if latestCreated != "" && !latestReady {
		out[latestCreated] = max(out[latestCreated], max(lo, 1))
	}
	return out
}

// replicaName names a new replica of rev.
func replicaName(rev string, suffix string) string {
	return rev + "-" + strings.ToLower(suffix)
}

// containerResources is app.ContainerResources (kept here so the
// autoscaler reads limits the way replicas get them).
func containerResources(r api.AppResources) (api.Resources, error) {
	return app.ContainerResources(r)
}
