package daemon

import (
	"context"
	"os"
	"path/filepath"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/api/policy"
	"skiff.dev/skiff/internal/apiserver"
)

// PolicyConfig is the daemon's admission policy.
type PolicyConfig struct {
	// Profile is the security profile of containers and Apps that choose
	// none: privileged, baseline (the default) or restricted.
	Profile string
	// File is a policy file of custom CEL rules ("" for none).
	File string
	// HostPaths are the host directories bind mounts may come from under
	// the baseline and restricted profiles.
	HostPaths []string
}

// checker compiles the policy; a bad profile or policy file is ErrInvalid
// naming what is wrong (and the file's line), and stops the daemon.
func (c PolicyConfig) checker() (*policy.Checker, error) {
	p, err := policy.ParseProfile(c.Profile)
	if err != nil {
		return nil, errdefs.Invalid("--security-profile: %v", err)
	}
	chk := &policy.Checker{Profile: p}
	for _, h := range c.HostPaths {
		if !filepath.IsAbs(h) {
			return nil, errdefs.Invalid("--allow-host-path %q: give an absolute directory", h)
		}
		chk.HostPaths = append(chk.HostPaths, filepath.Clean(h))
	}
	if c.File != "" {
		data, err := os.ReadFile(c.File)
		if err != nil {
			return nil, errdefs.Invalid("--policy: %v", err)
		}
		if chk.Rules, err = policy.ParseRules(c.File, data); err != nil {
			return nil, err
		}
	}
	return chk, nil
}

// admittedContainers checks every container create request against the
// policy before anything of it is made.
type admittedContainers struct {
	apiserver.Containers
	policy *policy.Checker
}

func (a admittedContainers) Create(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error) {
	if err := checkReplicaLabels(req.Config.Labels); err != nil {
		return api.Container{}, err
	}
	if err := a.policy.Container(req); err != nil {
		return api.Container{}, err
	}
	return a.Containers.Create(ctx, req)
}

// admittedApps checks every App applied against the policy, with its
// defaults filled in, before anything of it is stored. An App that is not
// valid goes on to Apply, which names its field errors.
type admittedApps struct {
	apiserver.Apps
	policy *policy.Checker
}

func (a admittedApps) Apply(ctx context.Context, in api.App) (api.App, error) {
	c := in
	app.SetDefaults(&c)
	if app.Validate(c).Err() == nil {
		if err := a.policy.App(c); err != nil {
			return api.App{}, err
		}
	}
	return a.Apps.Apply(ctx, in)
}

var (
	_ apiserver.Containers = admittedContainers{}
	_ apiserver.Apps       = admittedApps{}
)
