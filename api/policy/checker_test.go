package policy

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// restrictedOK is a container config that meets every profile.
func restrictedOK() api.ContainerConfig {
	return api.ContainerConfig{Image: "web", User: "1000", CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"},
		ReadonlyRootfs: true, Resources: api.Resources{MemoryBytes: 64 << 20, NanoCPUs: 5e8}, UserNS: api.UserNSAuto}
}

func TestContainerProfiles(t *testing.T) {
	with := func(f func(*api.ContainerConfig)) api.ContainerConfig { c := restrictedOK(); f(&c); return c }
	plain := api.ContainerConfig{Image: "web"}
	tests := []struct {
		name    string
		profile Profile
		cfg     api.ContainerConfig
		want    []string // "rule|field|fix substring" of each violation, in order
	}{
		{"privileged allows privileged", Privileged, api.ContainerConfig{Privileged: true, Network: "host", CapAdd: []string{"SYS_ADMIN"},
			Mounts: []api.Mount{{Type: api.MountBind, Source: "/etc"}}}, nil},
		{"baseline allows plain", Baseline, plain, nil},
		{"baseline allows baseline caps", Baseline, api.ContainerConfig{CapAdd: []string{"cap_chown", "NET_BIND_SERVICE"}}, nil},
		{"baseline refuses privileged", Baseline, api.ContainerConfig{Privileged: true},
			[]string{"baseline/privileged|config.privileged|drop --privileged"}},
		{"baseline refuses host network", Baseline, api.ContainerConfig{Network: "host"},
			[]string{"baseline/host-namespaces|config.network|instead of --network host"}},
		{"baseline refuses SYS_ADMIN", Baseline, api.ContainerConfig{CapAdd: []string{"CHOWN", "CAP_SYS_ADMIN"}},
			[]string{"baseline/capabilities|config.capAdd[1]|baseline list"}},
		{"baseline refuses ALL", Baseline, api.ContainerConfig{CapAdd: []string{"all"}},
			[]string{"baseline/capabilities|config.capAdd[0]|baseline list"}},
		{"baseline refuses host path outside list", Baseline, api.ContainerConfig{Mounts: []api.Mount{
			{Type: api.MountVolume, Source: "data"}, {Type: api.MountBind, Source: "/srv/data/../../etc"}}},
			[]string{"baseline/host-path|config.mounts[1].source|--allow-host-path"}},
		{"baseline allows host path in list", Baseline, api.ContainerConfig{Mounts: []api.Mount{{Type: api.MountBind, Source: "/srv/data/x"}}}, nil},
		{"baseline refuses sibling of listed dir", Baseline, api.ContainerConfig{Mounts: []api.Mount{{Type: api.MountBind, Source: "/srv/database"}}},
			[]string{"baseline/host-path|config.mounts[0].source|named volume"}},
		{"privileged allows unconfined seccomp", Privileged, api.ContainerConfig{Seccomp: api.SeccompUnconfined, AppArmor: "unconfined", LabelDisable: true}, nil},
		{"baseline refuses unconfined security", Baseline, api.ContainerConfig{Seccomp: api.SeccompUnconfined, AppArmor: "unconfined", LabelDisable: true}, []string{
			"baseline/seccomp|config.seccomp|seccomp=unconfined",
			"baseline/apparmor|config.apparmor|apparmor=unconfined",
			"baseline/selinux|config.labelDisable|label=disable"}},
		{"baseline allows a seccomp profile, devices and privilege escalation", Baseline, api.ContainerConfig{Seccomp: `{"defaultAction":"SCMP_ACT_ALLOW"}`,
			NoNewPrivileges: new(false), Devices: []api.DeviceMapping{{PathOnHost: "/dev/fuse"}}}, nil},
		{"restricted refuses devices and privilege escalation", Restricted, with(func(c *api.ContainerConfig) {
			c.NoNewPrivileges, c.Devices = new(false), []api.DeviceMapping{{PathOnHost: "/dev/fuse"}}
		}), []string{
			"restricted/allow-privilege-escalation|config.noNewPrivileges|no-new-privileges=false",
			"restricted/devices|config.devices[0]|drop --device"}},
		{"restricted allows a seccomp profile and no-new-privileges", Restricted, with(func(c *api.ContainerConfig) {
			c.Seccomp, c.NoNewPrivileges = `{"defaultAction":"SCMP_ACT_ERRNO"}`, new(true)
		}), nil},
		{"restricted allows hardened", Restricted, restrictedOK(), nil},
		{"restricted refuses plain", Restricted, plain, []string{
			"restricted/run-as-non-root|config.user|--user 1000",
			"restricted/capabilities|config.capDrop|--cap-drop ALL",
			"restricted/user-namespace|config.userns|--userns auto",
			"restricted/read-only-root-filesystem|config.readonlyRootfs|--read-only",
			"restricted/resource-limits|config.resources.memoryBytes|--memory",
			"restricted/resource-limits|config.resources.nanoCPUs|--cpus"}},
		{"restricted refuses root user", Restricted, with(func(c *api.ContainerConfig) { c.User = "root:root" }),
			[]string{"restricted/run-as-non-root|config.user|non-root"}},
		{"restricted refuses uid 0", Restricted, with(func(c *api.ContainerConfig) { c.User = "0" }),
			[]string{"restricted/run-as-non-root|config.user|non-root"}},
		{"restricted refuses CHOWN", Restricted, with(func(c *api.ContainerConfig) { c.CapAdd = []string{"CHOWN"} }),
			[]string{"restricted/capabilities|config.capAdd[0]|only NET_BIND_SERVICE"}},
		{"restricted keeps baseline rules", Restricted, with(func(c *api.ContainerConfig) { c.Privileged = true }),
			[]string{"restricted/privileged|config.privileged|drop --privileged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Profile: tt.profile, HostPaths: []string{"/srv/data/"}}
			req := api.ContainerCreateRequest{Name: "web", Config: tt.cfg}
			checkViolations(t, c.CheckContainer(req), tt.want)
			err := c.Container(req)
			if (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("Container: %v", err)
			}
			if err != nil {
				var r *Refusal
				if !errors.Is(err, errdefs.ErrInvalid) || !errors.As(err, &r) || !strings.Contains(err.Error(), "container web refused") {
					t.Fatalf("error %v: want an ErrInvalid *Refusal naming the container", err)
				}
			}
		})
	}
}

func checkViolations(t *testing.T, got []Violation, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d violations %v, want %d %v", len(got), got, len(want), want)
	}
	for i, w := range want {
		parts := strings.SplitN(w, "|", 3)
		v := got[i]
		if v.Rule != parts[0] || v.Field != parts[1] || !strings.Contains(v.Fix, parts[2]) || v.Message == "" {
			t.Errorf("violation %d = %+v, want rule %s field %s fix containing %q", i, v, parts[0], parts[1], parts[2])
		}
		if s := v.String(); !strings.Contains(s, v.Rule) || !strings.Contains(s, v.Field) || !strings.Contains(s, "fix: "+v.Fix) {
			t.Errorf("String() = %q: want rule, field and fix", s)
		}
	}
}

func app(profile string, res api.AppResources) api.App {
	return api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind, Metadata: api.ObjectMeta{Name: "shop"},
		Spec: api.AppSpec{Image: "registry.example/shop:1", Resources: res, Security: api.AppSecurity{Profile: profile}}}
}

func TestAppProfiles(t *testing.T) {
	limits := api.AppResources{CPU: "500m", Memory: "256Mi"}
	uid := func(u int64) *int64 { return &u }
	hardened := func(f func(*api.App)) api.App {
		a := app("restricted", limits)
		a.Spec.Security.RunAsUser = uid(1000)
		a.Spec.Security.ReadOnlyRootFilesystem = true
		a.Spec.Security.Capabilities = api.Capabilities{Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE"}}
		if f != nil {
			f(&a)
		}
		return a
	}
	tests := []struct {
		name   string
		daemon Profile
		app    api.App
		want   []string
	}{
		{"baseline daemon allows App", Baseline, app("", api.AppResources{}), nil},
		{"privileged daemon allows baseline App", Privileged, app("baseline", api.AppResources{}), nil},
		{"privileged App may add SYS_ADMIN", Privileged, func() api.App {
			a := app("", nil0)
			a.Spec.Security.Capabilities.Add = []string{"SYS_ADMIN"}
			return a
		}(), nil},
		{"baseline daemon refuses privileged App", Baseline, app("privileged", api.AppResources{}),
			[]string{"profile|spec.security.profile|--security-profile privileged"}},
		{"baseline refuses SYS_ADMIN", Baseline, func() api.App {
			a := app("", nil0)
			a.Spec.Security.Capabilities.Add = []string{"CHOWN", "sys_admin"}
			return a
		}(), []string{"baseline/capabilities|spec.security.capabilities.add[1]|baseline list"}},
		{"restricted App without anything", Baseline, app("restricted", api.AppResources{}), []string{
			"restricted/run-as-non-root|spec.security.runAsUser|runAsUser, e.g. 1000",
			"restricted/capabilities|spec.security.capabilities.drop|drop: [ALL]",
			"restricted/read-only-root-filesystem|spec.security.readOnlyRootFilesystem|readOnlyRootFilesystem: true",
			"restricted/resource-limits|spec.resources.memory|256Mi",
			"restricted/resource-limits|spec.resources.cpu|500m"}},
		{"restricted allows hardened App", Baseline, hardened(nil), nil},
		{"restricted daemon allows hardened App", Restricted, hardened(func(a *api.App) { a.Spec.Security.Profile = "" }), nil},
		{"restricted refuses uid 0", Restricted, hardened(func(a *api.App) { a.Spec.Security.RunAsUser = uid(0) }),
			[]string{"restricted/run-as-non-root|spec.security.runAsUser|e.g. 1000"}},
		{"restricted refuses CHOWN", Restricted, hardened(func(a *api.App) { a.Spec.Security.Capabilities.Add = []string{"CHOWN"} }),
			[]string{"restricted/capabilities|spec.security.capabilities.add[0]|only NET_BIND_SERVICE"}},
		{"restricted refuses hostUsers", Restricted, hardened(func(a *api.App) { t := true; a.Spec.Security.HostUsers = &t }),
			[]string{"restricted/user-namespace|spec.security.hostUsers|false is the default"}},
		{"baseline allows hostUsers", Baseline, func() api.App { a := app("", nil0); t := true; a.Spec.Security.HostUsers = &t; return a }(), nil},
		{"restricted daemon refuses baseline App", Restricted, hardened(func(a *api.App) { a.Spec.Security.Profile = "baseline" }),
			[]string{"profile|spec.security.profile|use restricted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Profile: tt.daemon}
			checkViolations(t, c.CheckApp(tt.app), tt.want)
			if err := c.App(tt.app); (err != nil) != (len(tt.want) > 0) || err != nil && !strings.Contains(err.Error(), "App shop refused") {
				t.Fatalf("App: %v", err)
			}
		})
	}
}

var nil0 = api.AppResources{}

func TestParseProfile(t *testing.T) {
	for in, want := range map[string]Profile{"": Baseline, "privileged": Privileged, "restricted": Restricted} {
		if p, err := ParseProfile(in); err != nil || p != want {
			t.Errorf("ParseProfile(%q) = %q, %v", in, p, err)
		}
	}
	if _, err := ParseProfile("strict"); err == nil || !strings.Contains(err.Error(), "use privileged, baseline or restricted") {
		t.Errorf("ParseProfile(strict) = %v", err)
	}
}
