package api

import (
	"strconv"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// SeccompUnconfined is ContainerConfig.Seccomp for no seccomp filter.
const SeccompUnconfined = "unconfined"

// ParseSecurityOpt applies one of docker's --security-opt values to cfg:
// no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE
// (the JSON text of a profile in docker's format: the CLI reads the file
// and sends its content, as docker's does), apparmor=unconfined or
// label=disable. Docker's older KEY:VALUE spelling is accepted too. Any
// other option is ErrInvalid naming it.
func ParseSecurityOpt(cfg *ContainerConfig, opt string) error {
	k, v, hasValue := strings.Cut(opt, "=")
	if !hasValue && !strings.HasPrefix(strings.TrimSpace(opt), "{") {
		k, v, hasValue = strings.Cut(opt, ":")
	}
	switch k {
	case "no-new-privileges":
		b := true
		if hasValue {
			var err error
			if b, err = strconv.ParseBool(v); err != nil {
				return errdefs.Invalid("security option %q: no-new-privileges takes true or false", opt)
			}
		}
		cfg.NoNewPrivileges = &b
	case "seccomp":
		switch {
		case v == SeccompUnconfined:
		case strings.HasPrefix(strings.TrimSpace(v), "{"):
		default:
			return errdefs.Invalid("security option seccomp=%.40s: give unconfined or a profile (the skiff and docker CLIs read seccomp=FILE.json and send its JSON)", v)
		}
		cfg.Seccomp = v
	case "apparmor":
		if v != "unconfined" {
			return errdefs.Invalid("security option %q: this host's kernel has no AppArmor, so only apparmor=unconfined is accepted", opt)
		}
		cfg.AppArmor = v
	case "label":
		if v != "disable" {
			return errdefs.Invalid("security option %q: SELinux is not enabled for containers, so only label=disable is accepted", opt)
		}
		cfg.LabelDisable = true
	default:
		return errdefs.Invalid("security option %q is not supported: use no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json, apparmor=unconfined or label=disable", opt)
	}
	return nil
}

// SecurityOpts is cfg's security options in docker's --security-opt
// form, as docker inspect shows HostConfig.SecurityOpt.
func SecurityOpts(cfg ContainerConfig) []string {
	var out []string
	if cfg.NoNewPrivileges != nil {
		out = append(out, "no-new-privileges="+strconv.FormatBool(*cfg.NoNewPrivileges))
	}
	if cfg.Seccomp != "" {
		out = append(out, "seccomp="+cfg.Seccomp)
	}
	if cfg.AppArmor != "" {
		out = append(out, "apparmor="+cfg.AppArmor)
	}
	if cfg.LabelDisable {
		out = append(out, "label=disable")
	}
	return out
}
