package policy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"skiff.dev/skiff/api"
)

// Profile is a built-in admission profile.
type Profile string

// The profiles, from the loosest to the strictest.
const (
	Privileged Profile = "privileged"
	Baseline   Profile = "baseline"
	Restricted Profile = "restricted"
)

// DefaultProfile is the daemon's profile when none is chosen.
const DefaultProfile = Baseline

// ParseProfile returns the profile named s ("" is DefaultProfile).
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case "":
		return DefaultProfile, nil
	case Privileged, Baseline, Restricted:
		return p, nil
	}
	return "", fmt.Errorf("unknown security profile %q: use privileged, baseline or restricted", s)
}

// level orders profiles: a higher level is stricter.
func (p Profile) level() int {
	switch p {
	case Privileged:
		return 0
	case Restricted:
		return 2
	}
	return 1
}

// StricterOrEqual reports whether p allows no more than q does.
func (p Profile) StricterOrEqual(q Profile) bool { return p.level() >= q.level() }

// BaselineCapabilities are the capabilities the baseline profile lets a
// container add: the Pod Security Standards baseline list.
var BaselineCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// capName normalizes "cap_net_admin" and "NET_ADMIN" to "NET_ADMIN".
func capName(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

// checkContainerProfile returns what cfg breaks of profile p. hostPaths
// are the host directories bind mounts may come from.
func checkContainerProfile(p Profile, cfg api.ContainerConfig, hostPaths []string) []Violation {
	if p == Privileged {
		return nil
	}
	var out []Violation
	add := func(rule, field, msg, fix string) {
		out = append(out, Violation{Rule: string(p) + "/" + rule, Field: field, Message: msg, Fix: fix})
	}
	loosen := "or run the daemon with --security-profile privileged"
	if cfg.Privileged {
		add("privileged", "config.privileged", "privileged containers are not allowed", "drop --privileged, "+loosen)
	}
	if cfg.Network == api.NetworkHost {
		add("host-namespaces", "config.network", "the host network namespace is not allowed", "use a skiff network (the default) instead of --network host, "+loosen)
	}
	for i, c := range cfg.CapAdd {
		if n := capName(c); !slices.Contains(BaselineCapabilities, n) {
			add("capabilities", fmt.Sprintf("config.capAdd[%d]", i), fmt.Sprintf("adding capability %s is not allowed", n),
				"add only capabilities of the baseline list ("+strings.Join(BaselineCapabilities, ", ")+"), "+loosen)
		}
	}
	for i, m := range cfg.Mounts {
		if m.Type == api.MountBind && !underAny(m.Source, hostPaths) {
			fix := "use a named volume, or run the daemon with --allow-host-path DIR for a directory holding it"
			add("host-path", fmt.Sprintf("config.mounts[%d].source", i), fmt.Sprintf("host path %s is not in the daemon's allow list", m.Source), fix)
		}
	}
	out = append(out, checkSecurityOpts(p, cfg)...)
	if p == Restricted {
		out = append(out, checkRestricted(cfg)...)
	}
	return out
}

// checkSecurityOpts returns what cfg's security options and devices
// break of profile p (baseline or restricted), as the Pod Security
// Standards say: baseline forbids an Unconfined seccomp profile, an
// unconfined AppArmor profile and disabling SELinux labels (a custom
// seccomp profile, like a Localhost one, is allowed); restricted also
// forbids privilege escalation (no-new-privileges=false) and host
// devices.
func checkSecurityOpts(p Profile, cfg api.ContainerConfig) []Violation {
	var out []Violation
	add := func(rule, field, msg, fix string) {
		out = append(out, Violation{Rule: string(p) + "/" + rule, Field: field, Message: msg, Fix: fix})
	}
	loosen := "or run the daemon with --security-profile privileged"
	if cfg.Seccomp == api.SeccompUnconfined {
		add("seccomp", "config.seccomp", "an unconfined seccomp profile is not allowed", "drop --security-opt seccomp=unconfined (give a profile file instead), "+loosen)
	}
	if cfg.AppArmor == "unconfined" {
		add("apparmor", "config.apparmor", "an unconfined AppArmor profile is not allowed", "drop --security-opt apparmor=unconfined, "+loosen)
	}
	if cfg.LabelDisable {
		add("selinux", "config.labelDisable", "disabling SELinux labels is not allowed", "drop --security-opt label=disable, "+loosen)
	}
	if p != Restricted {
		return out
	}
	loosen = ", or use the baseline profile"
	if cfg.NoNewPrivileges != nil && !*cfg.NoNewPrivileges {
		add("allow-privilege-escalation", "config.noNewPrivileges", "privilege escalation must not be allowed", "drop --security-opt no-new-privileges=false"+loosen)
	}
	for i, d := range cfg.Devices {
		add("devices", fmt.Sprintf("config.devices[%d]", i), fmt.Sprintf("host device %s is not allowed", d.PathOnHost), "drop --device"+loosen)
	}
	return out
}

// checkRestricted returns what cfg breaks of what Restricted adds.
func checkRestricted(cfg api.ContainerConfig) []Violation {
	var out []Violation
	add := func(rule, field, msg, fix string) {
		out = append(out, Violation{Rule: "restricted/" + rule, Field: field, Message: msg, Fix: fix})
	}
	loosen := ", or use the baseline profile"
	if u, _, _ := strings.Cut(cfg.User, ":"); u == "" || u == "0" || u == "root" {
		add("run-as-non-root", "config.user", "the container must run as a non-root user", "set a non-root user, e.g. --user 1000"+loosen)
	}
	if !slices.ContainsFunc(cfg.CapDrop, func(c string) bool { return capName(c) == "ALL" }) {
		add("capabilities", "config.capDrop", "every capability must be dropped", "add --cap-drop ALL"+loosen)
	}
	for i, c := range cfg.CapAdd {
		if n := capName(c); n != "NET_BIND_SERVICE" {
			add("capabilities", fmt.Sprintf("config.capAdd[%d]", i), fmt.Sprintf("adding capability %s is not allowed", n), "add only NET_BIND_SERVICE"+loosen)
		}
	}
	if cfg.UserNS != api.UserNSAuto {
		add("user-namespace", "config.userns", "the container must have a user namespace of its own", "add --userns auto"+loosen)
	}
	if !cfg.ReadonlyRootfs {
		add("read-only-root-filesystem", "config.readonlyRootfs", "the root filesystem must be read-only", "add --read-only (write to volumes or tmpfs)"+loosen)
	}
	if cfg.Resources.MemoryBytes <= 0 {
		add("resource-limits", "config.resources.memoryBytes", "a memory limit is required", "set --memory, e.g. --memory 256m"+loosen)
	}
	if cfg.Resources.NanoCPUs <= 0 {
		add("resource-limits", "config.resources.nanoCPUs", "a cpu limit is required", "set --cpus, e.g. --cpus 0.5"+loosen)
	}
	return out
}

// underAny reports whether path is one of dirs or inside one.
func underAny(path string, dirs []string) bool {
	path = filepath.Clean(path)
	for _, d := range dirs {
		d = filepath.Clean(d)
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// checkAppProfile returns what a breaks of profile p. An App's replicas
// join a skiff network, mount named volumes only and are never
// privileged; what the profiles decide is spec.security and, under
// Restricted, spec.resources.
func checkAppProfile(p Profile, a api.App) []Violation {
	if p == Privileged {
		return nil
	}
	var out []Violation
	add := func(rule, field, msg, fix string) {
		out = append(out, Violation{Rule: string(p) + "/" + rule, Field: field, Message: msg, Fix: fix})
	}
	sec := a.Spec.Security
	for i, c := range sec.Capabilities.Add {
		n := capName(c)
		field := fmt.Sprintf("spec.security.capabilities.add[%d]", i)
		switch {
		case p == Restricted && n != "NET_BIND_SERVICE":
			add("capabilities", field, fmt.Sprintf("adding capability %s is not allowed", n), "add only NET_BIND_SERVICE, or use spec.security.profile baseline")
		case !slices.Contains(BaselineCapabilities, n):
			add("capabilities", field, fmt.Sprintf("adding capability %s is not allowed", n),
				"add only capabilities of the baseline list ("+strings.Join(BaselineCapabilities, ", ")+"), or run the daemon with --security-profile privileged")
		}
	}
	if p != Restricted {
		return out
	}
	const loosen = ", or use spec.security.profile baseline"
	if u := sec.RunAsUser; u == nil || *u == 0 {
		add("run-as-non-root", "spec.security.runAsUser", "the App must run as a non-root user", "set spec.security.runAsUser, e.g. 1000"+loosen)
	}
	if !slices.ContainsFunc(sec.Capabilities.Drop, func(c string) bool { return capName(c) == "ALL" }) {
		add("capabilities", "spec.security.capabilities.drop", "every capability must be dropped", "set spec.security.capabilities.drop: [ALL]"+loosen)
	}
	if h := sec.HostUsers; h != nil && *h {
		add("user-namespace", "spec.security.hostUsers", "the App must not run in the host's user namespace", "remove spec.security.hostUsers (false is the default)"+loosen)
	}
	if !sec.ReadOnlyRootFilesystem {
		add("read-only-root-filesystem", "spec.security.readOnlyRootFilesystem", "the root filesystem must be read-only",
			"set spec.security.readOnlyRootFilesystem: true (write to volumes)"+loosen)
	}
	if a.Spec.Resources.Memory == "" {
		add("resource-limits", "spec.resources.memory", "a memory limit is required", "set spec.resources.memory, e.g. 256Mi"+loosen)
	}
	if a.Spec.Resources.CPU == "" {
		add("resource-limits", "spec.resources.cpu", "a cpu limit is required", "set spec.resources.cpu, e.g. 500m"+loosen)
	}
	return out
}
