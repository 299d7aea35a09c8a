package app

import (
	"fmt"
	"path"
	"strings"
	"time"

	"skiff.dev/skiff/api"
)

// Bounds Validate enforces beyond the syntax of each field.
const (
	// MinMemory is the smallest memory limit, Docker's: below it a
	// container's own start-up (runc init, the dynamic loader) may not fit.
	MinMemory = 6 << 20
	// MaxRevisionHistoryLimit bounds how many old revisions are kept.
	MaxRevisionHistoryLimit = 1000
	// MaxRequestTimeout bounds ingress.timeout.
	MaxRequestTimeout = time.Hour
	// MinProbeInterval is the smallest probe period and timeout.
	MinProbeInterval = 100 * time.Millisecond
)

// Validate checks an App as it will be stored: call SetDefaults first, so
// that defaulted fields are checked too. It returns every problem found,
// each with its field path, in field order; nil means the App is valid.
// Status and the metadata skiff sets (uid, generation, resourceVersion,
// creationTimestamp) are not checked. That traffic targets name
// revisions that exist is checked by the controller, which knows them.
func Validate(app api.App) FieldErrors {
	var errs FieldErrors
	if app.APIVersion != api.AppAPIVersion {
		errs.add("apiVersion", "must be %s", api.AppAPIVersion)
	}
	if app.Kind != api.AppKind {
		errs.add("kind", "must be %s", api.AppKind)
	}
	validateMetadata(&errs, app.Metadata)
	validateSpec(&errs, app.Metadata.Name, app.Spec)
	switch app.Spec.Security.Profile {
	case "", "privileged", "baseline", "restricted":
	default:
		errs.add("spec.security.profile", "must be privileged, baseline or restricted")
	}
	if u := app.Spec.Security.RunAsUser; u != nil && (*u < 0 || *u > 1<<32-2) {
		errs.add("spec.security.runAsUser", "must be a uid from 0 to 4294967294")
	}
	validateIdentity(&errs, app.Spec.Identity)
	capLists := []struct {
		field string
		caps  []string
	}{{"add", app.Spec.Security.Capabilities.Add}, {"drop", app.Spec.Security.Capabilities.Drop}}
	for _, l := range capLists {
		field := l.field
		for i, c := range l.caps {
			if !capabilityRE.MatchString(c) {
				errs.add(fmt.Sprintf("spec.security.capabilities.%s[%d]", field, i), "must be a capability name such as NET_BIND_SERVICE, or ALL")
			}
		}
	}
	validateNetwork(&errs, app.Spec.Network)
	return errs
}

// validateNetwork checks spec.network: each allowFrom entry names an App
// or has a selector with valid labels, not both.
func validateNetwork(errs *FieldErrors, n api.AppNetwork) {
	validateAttachments(errs, n.Networks)
	for i, peer := range n.AllowFrom {
		p := fmt.Sprintf("spec.network.allowFrom[%d]", i)
		switch {
		case peer.App == "" && peer.Selector == nil:
			errs.add(p, "needs app (an App's name) or selector (matchLabels)")
			continue
		case peer.App != "" && peer.Selector != nil:
			errs.add(p, "has both app and selector: write each in an entry of its own")
			continue
		}
		if peer.App != "" {
			if len(peer.App) > MaxNameLength || !dns1035LabelRE.MatchString(peer.App) {
				errs.add(child(p, "app"), "must be an App name: a DNS label of at most %d lowercase letters, digits and '-'", MaxNameLength)
			}
			continue
		}
		mp := child(child(p, "selector"), "matchLabels")
		for _, k := range sortedKeys(peer.Selector.MatchLabels) {
			kp := key(mp, k)
			if msg := qualifiedNameProblem(k); msg != "" {
				errs.add(kp, "%s", msg)
			}
			if v := peer.Selector.MatchLabels[k]; len(v) > maxLabelValueLength || !labelValueRE.MatchString(v) {
				errs.add(kp, "value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
			}
		}
	}
}

// maxAppNetworks bounds spec.network.networks (a container joins at most
// 32 further networks).
const maxAppNetworks = 32

// validateAttachments checks spec.network.networks: named networks, each
// once, not skiff's default network nor a mode, with DNS-name aliases.
func validateAttachments(errs *FieldErrors, ns []api.AppNetworkAttachment) {
	if len(ns) > maxAppNetworks {
		errs.add("spec.network.networks", "at most %d networks, not %d", maxAppNetworks, len(ns))
	}
	seen := map[string]bool{}
	for i, n := range ns {
		p := fmt.Sprintf("spec.network.networks[%d]", i)
		switch {
		case n.Name == "":
			errs.add(child(p, "name"), "required: the name of a network made with skiff network create")
		case n.Name == api.DefaultNetwork:
			errs.add(child(p, "name"), "replicas are always on the default network %s: name only further networks", api.DefaultNetwork)
		case n.Name == api.NetworkNone || n.Name == api.NetworkHost:
			errs.add(child(p, "name"), "%s is not a network a replica can join: name a bridge network", n.Name)
		case !networkNameRE.MatchString(n.Name):
			errs.add(child(p, "name"), "must be a network name: at most 63 letters, digits, '_', '.' and '-', starting with a letter or digit")
		case seen[n.Name]:
			errs.add(child(p, "name"), "network %s is named twice: list each network once", n.Name)
		}
		seen[n.Name] = true
		for j, a := range n.Aliases {
			if !networkAliasRE.MatchString(a) {
				errs.add(fmt.Sprintf("%s.aliases[%d]", p, j), "must be a DNS name: letters, digits, '_', '.' and '-', starting and ending with a letter or digit")
			}
		}
	}
}

func validateMetadata(errs *FieldErrors, m api.ObjectMeta) {
	const p = "metadata"
	switch n := m.Name; {
	case n == "":
		errs.add(child(p, "name"), "required")
	case len(n) > MaxNameLength || !dns1035LabelRE.MatchString(n):
		errs.add(child(p, "name"), "must be a DNS label: at most %d lowercase letters, digits and '-', starting with a letter and ending with a letter or digit", MaxNameLength)
	case revisionSuffixRE.MatchString(n):
		errs.add(child(p, "name"), "must not end in '-' and five digits, which revision names use")
	}
	for _, k := range sortedKeys(m.Labels) {
		kp := key(child(p, "labels"), k)
		if msg := qualifiedNameProblem(k); msg != "" {
			errs.add(kp, "%s", msg)
		}
		if v := m.Labels[k]; len(v) > maxLabelValueLength || !labelValueRE.MatchString(v) {
			errs.add(kp, "value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
		}
	}
	size := 0
	for _, k := range sortedKeys(m.Annotations) {
		if msg := qualifiedNameProblem(k); msg != "" {
			errs.add(key(child(p, "annotations"), k), "%s", msg)
		}
		size += len(k) + len(m.Annotations[k])
	}
	if size > maxAnnotationsBytes {
		errs.add(child(p, "annotations"), "must total at most 256 KiB, got %d bytes", size)
	}
}

func validateSpec(errs *FieldErrors, name string, s api.AppSpec) {
	const p = "spec"
	if s.Image == "" {
		errs.add(child(p, "image"), "required: the container image to run, such as localhost/shop:1.4")
	} else if msg := imageRefProblem(s.Image); msg != "" {
		errs.add(child(p, "image"), "%s", msg)
	}
	if len(s.Command) > 0 && s.Command[0] == "" {
		errs.add(index(child(p, "command"), 0), "must not be empty: it names the program to run")
	}
	validateStrings(errs, child(p, "command"), s.Command)
	validateStrings(errs, child(p, "args"), s.Args)
	validateEnv(errs, child(p, "env"), s.Env)
	validatePort(errs, child(p, "port"), s.Port)
	validateIngress(errs, child(p, "ingress"), s.Ingress)
	cpu, mem := validateResources(errs, child(p, "resources"), s.Resources)
	validateScale(errs, child(p, "scale"), s.Scale, cpu, mem)
	validateProbes(errs, child(p, "probes"), s.Probes, s.Port)
	validateVolumes(errs, child(p, "volumes"), s.Volumes)
	validateTraffic(errs, child(p, "traffic"), name, s.Traffic)
	if l := s.RevisionHistoryLimit; l != nil && (*l < 0 || *l > MaxRevisionHistoryLimit) {
		errs.add(child(p, "revisionHistoryLimit"), "must be 0..%d", MaxRevisionHistoryLimit)
	}
}

// validateStrings rejects NUL bytes, which no process argument can hold.
func validateStrings(errs *FieldErrors, p string, ss []string) {
	for i, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			errs.add(index(p, i), "must not contain NUL bytes")
		}
	}
}

func validateEnv(errs *FieldErrors, p string, env []api.EnvVar) {
	seen := map[string]int{}
	for i, e := range env {
		ep := index(p, i)
		switch {
		case e.Name == "":
			errs.add(child(ep, "name"), "required")
		case len(e.Name) > maxEnvNameLength || !envNameRE.MatchString(e.Name):
			errs.add(child(ep, "name"), "must be letters, digits, '_', '-' and '.', not starting with a digit")
		default:
			if j, dup := seen[e.Name]; dup {
				errs.add(child(ep, "name"), "duplicate %s (also %s)", e.Name, index(p, j))
			} else {
				seen[e.Name] = i
			}
		}
		if strings.IndexByte(e.Value, 0) >= 0 {
			errs.add(child(ep, "value"), "must not contain NUL bytes")
		}
		if e.SecretRef == "" {
			continue
		}
		if e.Value != "" {
			errs.add(ep, "set either value or secretRef, not both")
		}
		secret, k, ok := strings.Cut(e.SecretRef, "/")
		switch {
		case !ok || secret == "" || k == "":
			errs.add(child(ep, "secretRef"), "must be SECRET/KEY, such as db/password")
		case !isDNSSubdomain(secret):
			errs.add(child(ep, "secretRef"), "secret name %q must be lowercase DNS labels joined by '.'", secret)
		case len(k) > maxSecretKeyLength || !secretKeyRE.MatchString(k):
			errs.add(child(ep, "secretRef"), "key %q must be letters, digits, '-', '_' and '.'", k)
		}
	}
}

func validatePort(errs *FieldErrors, p string, port int) {
	if port < 1 || port > 65535 {
		errs.add(p, "must be 1..65535")
	}
}

func validateIngress(errs *FieldErrors, p string, in api.Ingress) {
	if h := in.Host; h != "" {
		if !isDNSSubdomain(h) {
			errs.add(child(p, "host"), "must be a lowercase DNS name such as shop.example.com")
		} else if strings.Count(h, ".") == 0 {
			errs.add(child(p, "host"), "must have at least two labels, such as shop.localhost")
		}
	}
	pp := in.PathPrefix
	switch {
	case !strings.HasPrefix(pp, "/"):
		errs.add(child(p, "pathPrefix"), "must start with '/'")
	case strings.ContainsAny(pp, "?#%\\ \t\r\n"):
		errs.add(child(p, "pathPrefix"), "must be a plain path without '?', '#', '%%', '\\' or spaces")
	case path.Clean(pp) != pp && path.Clean(pp)+"/" != pp:
		errs.add(child(p, "pathPrefix"), "must be a clean path (no '//', '.' or '..' segments)")
	}
	validateDuration(errs, child(p, "timeout"), in.Timeout, time.Second, MaxRequestTimeout)
	if in.TLS != nil {
		tp := child(p, "tls")
		for _, f := range []struct{ name, path string }{{"certFile", in.TLS.CertFile}, {"keyFile", in.TLS.KeyFile}} {
			switch {
			case f.path == "":
				errs.add(child(tp, f.name), "is required: the absolute path of a PEM file on the daemon's machine (or remove tls to use the local CA)")
			case !path.IsAbs(f.path):
				errs.add(child(tp, f.name), "must be an absolute path on the daemon's machine, such as /etc/ssl/shop.pem")
			}
		}
	}
}

// validateDuration checks lo <= d <= hi; hi 0 means no upper bound.
func validateDuration(errs *FieldErrors, p string, d api.Duration, lo, hi time.Duration) {
	switch {
	case d.Duration < lo && lo == 0:
		errs.add(p, "must not be negative")
	case d.Duration < lo:
		errs.add(p, "must be at least %s", api.Duration{Duration: lo})
	case hi > 0 && d.Duration > hi:
		errs.add(p, "must be at most %s", api.Duration{Duration: hi})
	}
}

// validateResources checks the limits and returns which of cpu and memory
// are set.
func validateResources(errs *FieldErrors, p string, r api.AppResources) (cpu, mem bool) {
	if r.CPU != "" {
		q, err := ParseQuantity(r.CPU)
		switch {
		case err != nil:
			errs.add(child(p, "cpu"), "%v", err)
		case q.MilliValue() == 0:
			errs.add(child(p, "cpu"), "must be more than 0 (leave it out for no limit)")
		default:
			cpu = true
		}
	}
	if r.Memory != "" {
		q, err := ParseQuantity(r.Memory)
		switch {
		case err != nil:
			errs.add(child(p, "memory"), "%v", err)
		case q.MilliValue()%1000 != 0:
			errs.add(child(p, "memory"), "must be a whole number of bytes (the m suffix means thousandths)")
		case q.Value() < MinMemory:
			errs.add(child(p, "memory"), "must be at least 6Mi")
		default:
			mem = true
		}
	}
	if r.Pids < 0 {
		errs.add(child(p, "pids"), "must not be negative (leave it out for no limit)")
	}
	return cpu, mem
}

func validateScale(errs *FieldErrors, p string, sc api.Scale, cpu, mem bool) {
	if sc.Min != nil && *sc.Min < 0 {
		errs.add(child(p, "min"), "must not be negative")
	}
	if sc.Max != nil && *sc.Max < 1 {
		errs.add(child(p, "max"), "must be at least 1")
	}
	if sc.Min != nil && sc.Max != nil && *sc.Min >= 0 && *sc.Max >= 1 && *sc.Min > *sc.Max {
		errs.add(child(p, "max"), "must be at least min (%d)", *sc.Min)
	}
	targets := 0
	for _, t := range []struct {
		name  string
		value int
		hi    int
	}{{"concurrency", sc.Concurrency, 0}, {"rps", sc.RPS, 0}, {"cpuUtilization", sc.CPUUtilization, 100}, {"memoryUtilization", sc.MemoryUtilization, 100}} {
		switch {
		case t.value < 0:
			errs.add(child(p, t.name), "must not be negative")
		case t.hi > 0 && t.value > t.hi:
			errs.add(child(p, t.name), "must be 1..%d (percent)", t.hi)
		}
		if t.value != 0 {
			targets++
		}
	}
	if targets > 1 {
		errs.add(p, "set only one of concurrency, rps, cpuUtilization and memoryUtilization")
	}
	if sc.CPUUtilization > 0 && !cpu {
		errs.add(child(p, "cpuUtilization"), "needs spec.resources.cpu: utilisation is a percent of it")
	}
	if sc.MemoryUtilization > 0 && !mem {
		errs.add(child(p, "memoryUtilization"), "needs spec.resources.memory: utilisation is a percent of it")
	}
	validateDuration(errs, child(p, "idleTimeout"), sc.IdleTimeout, 0, 0)
	switch {
	case sc.Prewarm < 0:
		errs.add(child(p, "prewarm"), "must not be negative")
	case sc.Max != nil && *sc.Max >= 1 && sc.Prewarm > *sc.Max:
		errs.add(child(p, "prewarm"), "must be at most max (%d)", *sc.Max)
	}
}

// validateProbes checks the probes of an App listening on port.
func validateProbes(errs *FieldErrors, p string, pr api.Probes, port int) {
	validateProbe(errs, child(p, "startup"), pr.Startup, startupProbe, port)
	validateProbe(errs, child(p, "readiness"), pr.Readiness, readinessProbe, port)
	validateProbe(errs, child(p, "liveness"), pr.Liveness, livenessProbe, port)
}

func validateProbe(errs *FieldErrors, p string, pr *api.Probe, kind probeKind, port int) {
	// A probe port equal to spec.port was defaulted from it, or is valid
	// exactly when spec.port is: spec.port's own error is enough.
	probePort := func(pp string, n int) {
		if n != port {
			validatePort(errs, pp, n)
		}
	}
	if pr == nil {
		return
	}
	actions := 0
	if h := pr.HTTP; h != nil {
		actions++
		hp := child(p, "http")
		if !strings.HasPrefix(h.Path, "/") {
			errs.add(child(hp, "path"), "must start with '/'")
		} else if strings.ContainsAny(h.Path, " \t\r\n") {
			errs.add(child(hp, "path"), "must not contain spaces")
		}
		probePort(child(hp, "port"), h.Port)
		for i, hd := range h.Headers {
			if len(hd.Name) > maxHTTPHeaderNameLen || !httpTokenRE.MatchString(hd.Name) {
				errs.add(child(index(child(hp, "headers"), i), "name"), "must be an HTTP header name")
			}
			if strings.ContainsAny(hd.Value, "\r\n\x00") {
				errs.add(child(index(child(hp, "headers"), i), "value"), "must not contain line breaks or NUL bytes")
			}
		}
	}
	if pr.TCP != nil {
		actions++
		probePort(child(child(p, "tcp"), "port"), pr.TCP.Port)
	}
	if pr.Exec != nil {
		actions++
		ep := child(child(p, "exec"), "command")
		if len(pr.Exec.Command) == 0 || pr.Exec.Command[0] == "" {
			errs.add(ep, "required: the program to run and its arguments")
		}
		validateStrings(errs, ep, pr.Exec.Command)
	}
	if actions != 1 {
		errs.add(p, "must set exactly one of http, tcp and exec, got %d", actions)
	}
	validateDuration(errs, child(p, "initialDelay"), pr.InitialDelay, 0, 0)
	validateDuration(errs, child(p, "period"), pr.Period, MinProbeInterval, 0)
	validateDuration(errs, child(p, "timeout"), pr.Timeout, MinProbeInterval, 0)
	switch {
	case pr.SuccessThreshold < 1:
		errs.add(child(p, "successThreshold"), "must be at least 1")
	case kind != readinessProbe && pr.SuccessThreshold != 1:
		errs.add(child(p, "successThreshold"), "must be 1 for a %s probe", kind)
	}
	if pr.FailureThreshold < 1 {
		errs.add(child(p, "failureThreshold"), "must be at least 1")
	}
}

func validateVolumes(errs *FieldErrors, p string, vols []api.VolumeMount) {
	names, paths := map[string]int{}, map[string]int{}
	for i, v := range vols {
		vp := index(p, i)
		switch {
		case v.Name == "":
			errs.add(child(vp, "name"), "required")
		case len(v.Name) > maxDNSLabelLength || !dns1123LabelRE.MatchString(v.Name):
			errs.add(child(vp, "name"), "must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit")
		default:
			if j, dup := names[v.Name]; dup {
				errs.add(child(vp, "name"), "duplicate volume %s (also %s)", v.Name, index(p, j))
			} else {
				names[v.Name] = i
			}
		}
		if v.Secret != nil {
			validateSecretVolume(errs, child(vp, "secret"), *v.Secret)
		}
		mp := v.MountPath
		switch {
		case mp == "":
			errs.add(child(vp, "mountPath"), "required")
		case !path.IsAbs(mp):
			errs.add(child(vp, "mountPath"), "must be an absolute path")
		case path.Clean(mp) != mp || strings.IndexByte(mp, 0) >= 0:
			errs.add(child(vp, "mountPath"), "must be a clean path (no trailing '/', '//', '.' or '..' segments)")
		case mp == "/":
			errs.add(child(vp, "mountPath"), "must not be /")
		case underReservedDir(mp):
			errs.add(child(vp, "mountPath"), "must not be under /proc, /sys or /dev")
		default:
			if j, dup := paths[mp]; dup {
				errs.add(child(vp, "mountPath"), "duplicate mount path %s (also %s)", mp, index(p, j))
			} else {
				paths[mp] = i
			}
		}
	}
}

// validateSecretVolume checks a volume's secret: a secret name, and items
// naming valid keys and distinct plain file names.
func validateSecretVolume(errs *FieldErrors, p string, sv api.SecretVolume) {
	if sv.Name == "" {
		errs.add(child(p, "name"), "required: the secret whose keys become files (see skiff secret ls)")
	} else if api.CheckSecretName(sv.Name) != nil {
		errs.add(child(p, "name"), "must be a secret name: lowercase letters, digits and '-', in labels joined by '.'")
	}
	paths := map[string]int{}
	for i, it := range sv.Items {
		ip := index(child(p, "items"), i)
		if it.Key == "" || api.CheckSecretData(map[string][]byte{it.Key: nil}) != nil {
			errs.add(child(ip, "key"), "must be a secret key: letters, digits, '-', '_' and '.'")
			continue
		}
		file, field := it.Path, child(ip, "path")
		if file == "" {
			file, field = it.Key, child(ip, "key")
		}
		if !api.SecretFileName(file) {
			errs.add(field, "%q cannot name a file: give a path of letters, digits, '-', '_' and '.', other than . and ..", file)
			continue
		}
		if j, dup := paths[file]; dup {
			errs.add(field, "duplicate file %s (also %s)", file, index(child(p, "items"), j))
		} else {
			paths[file] = i
		}
	}
}

func validateTraffic(errs *FieldErrors, p, name string, traffic []api.TrafficTarget) {
	revisions, tags := map[string]int{}, map[string]int{}
	latest := -1
	sum, percentsOK := 0, true
	for i, t := range traffic {
		tp := index(p, i)
		switch {
		case t.Latest && t.Revision != "":
			errs.add(tp, "set either revision or latest, not both")
		case t.Latest:
			if latest >= 0 {
				errs.add(child(tp, "latest"), "only one target may follow the latest revision (also %s)", index(p, latest))
			} else {
				latest = i
			}
		case t.Revision == "":
			errs.add(tp, "set revision (such as %s) or latest: true", RevisionName(nonEmpty(name, "app"), 1))
		default:
			validateTrafficRevision(errs, child(tp, "revision"), name, t.Revision)
			if j, dup := revisions[t.Revision]; dup {
				errs.add(child(tp, "revision"), "duplicate revision %s (also %s)", t.Revision, index(p, j))
			} else {
				revisions[t.Revision] = i
			}
		}
		if t.Percent < 0 || t.Percent > 100 {
			errs.add(child(tp, "percent"), "must be 0..100")
			percentsOK = false
		}
		sum += t.Percent
		if t.Tag != "" {
			switch {
			case !dns1035LabelRE.MatchString(t.Tag):
				errs.add(child(tp, "tag"), "must be a DNS label: lowercase letters, digits and '-', starting with a letter")
			case len(t.Tag)+1+len(name) > maxDNSLabelLength:
				errs.add(child(tp, "tag"), "is too long: TAG-NAME must be at most 63 characters")
			default:
				if j, dup := tags[t.Tag]; dup {
					errs.add(child(tp, "tag"), "duplicate tag %s (also %s)", t.Tag, index(p, j))
				} else {
					tags[t.Tag] = i
				}
			}
		}
		if t.URL != "" {
			errs.add(child(tp, "url"), "is set by skiff in status.traffic; remove it from spec")
		}
	}
	if len(traffic) > 0 && percentsOK && sum != 100 {
		errs.add(p, "percents must sum to 100, got %d", sum)
	}
}

func validateTrafficRevision(errs *FieldErrors, p, name, rev string) {
	app, _, err := ParseRevisionName(rev)
	switch {
	case err != nil:
		errs.add(p, "must be a revision name such as %s", RevisionName(nonEmpty(name, "app"), 1))
	case app != name && name != "":
		errs.add(p, "must be a revision of this app (%s-NNNNN), not of %s", name, app)
	}
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func validateIdentity(errs *FieldErrors, id api.AppIdentity) {
	const p = "spec.identity.audiences"
	if len(id.Audiences) > 0 && !id.Enabled {
		errs.add(p, "needs enabled: true (audiences are those of the identity token)")
	}
	if len(id.Audiences) > 10 {
		errs.add(p, "must list at most 10 audiences")
	}
	seen := map[string]bool{}
	for i, a := range id.Audiences {
		switch {
		case a == "" || len(a) > 253 || strings.ContainsAny(a, " \t\n\""):
			errs.add(fmt.Sprintf("%s[%d]", p, i), "must be a name or URL of the service the token is for, without spaces, at most 253 characters")
		case seen[a] || a == "skiff":
			errs.add(fmt.Sprintf("%s[%d]", p, i), "%q is listed twice (\"skiff\" is always an audience)", a)
		}
		seen[a] = true
	}
}
