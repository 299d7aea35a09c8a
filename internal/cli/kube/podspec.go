package kube

import (
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/policy"
)

// The variables skiff sets in every replica, as the controller does.
const (
	envPort     = "PORT"
	envApp      = "SKIFF_APP"
	envRevision = "SKIFF_REVISION"
)

// container returns the App's container for revision rev.
func (x *exporter) container(rev api.Revision) corev1.Container {
	rs := rev.Spec
	rsDefaulted := api.App{Spec: api.AppSpec{Port: rs.Port, Probes: rs.Probes}}
	app.SetDefaults(&rsDefaulted)
	rs.Port, rs.Probes = rsDefaulted.Spec.Port, rsDefaulted.Spec.Probes
	c := corev1.Container{
		Name:    containerName,
		Image:   x.image(rev),
		Command: rs.Command,
		Args:    rs.Args,
		Ports:   []corev1.ContainerPort{{Name: portName, ContainerPort: int32(rs.Port), Protocol: corev1.ProtocolTCP}},
	}
	c.Env = []corev1.EnvVar{
		{Name: envPort, Value: strconv.Itoa(rs.Port)},
		{Name: envApp, Value: x.app.Metadata.Name},
		{Name: envRevision, Value: rev.Name},
	}
	for _, e := range rs.Env {
		v := corev1.EnvVar{Name: e.Name, Value: e.Value}
		if e.SecretRef != "" {
			name, key, _ := strings.Cut(e.SecretRef, "/")
			v.Value = ""
			v.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}
		}
		c.Env = append(c.Env, v)
	}
	c.Resources = x.resources(rs.Resources)
	c.StartupProbe = x.probe(rs.Probes.Startup, "spec.probes.startup")
	c.ReadinessProbe = x.probe(rs.Probes.Readiness, "spec.probes.readiness")
	c.LivenessProbe = x.probe(rs.Probes.Liveness, "spec.probes.liveness")
	for _, v := range rs.Volumes {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: v.MountPath, ReadOnly: v.ReadOnly})
	}
	c.SecurityContext = x.securityContext(rs.Security)
	return c
}

// image is the revision's image, pinned to the digest the daemon
// resolved it to when there is one (as Knative does); the reference as
// written is kept in an annotation by podAnnotations.
func (x *exporter) image(rev api.Revision) string {
	img, d := rev.Spec.Image, rev.Status.ImageDigest
	if d == "" || strings.Contains(img, "@") || strings.HasPrefix(img, "sha256:") {
		return img
	}
	repo := img
	if i := strings.LastIndexByte(img, ':'); i > strings.LastIndexByte(img, '/') {
		repo = img[:i]
	}
	return repo + "@" + d
}

// podAnnotations returns what the pod template keeps of skiff-only
// fields.
func (x *exporter) podAnnotations(rev api.Revision) map[string]string {
	m := map[string]string{}
	if img := x.image(rev); img != rev.Spec.Image {
		m[annoImage] = rev.Spec.Image
	}
	if p := rev.Spec.Resources.Pids; p > 0 {
		m[annoPids] = strconv.FormatInt(p, 10)
		if rev.Name == x.latest {
			x.warn("spec.resources.pids", "no per-pod counterpart (Kubernetes limits pids per node, kubelet podPidsLimit): kept as annotation %s, not enforced", annoPids)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// resources returns requests equal to limits, as docs/app-reference.md
// says.
func (x *exporter) resources(r api.AppResources) corev1.ResourceRequirements {
	l := corev1.ResourceList{}
	if r.CPU != "" {
		l[corev1.ResourceCPU] = mustQuantity(r.CPU)
	}
	if r.Memory != "" {
		l[corev1.ResourceMemory] = mustQuantity(r.Memory)
	}
	if len(l) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Limits: l, Requests: l.DeepCopy()}
}

// mustQuantity parses a quantity that app.Validate accepted (skiff's
// syntax is a subset of Kubernetes').
func mustQuantity(s string) resource.Quantity {
	return resource.MustParse(s)
}

// probe converts one probe; durations round up to whole seconds.
func (x *exporter) probe(p *api.Probe, field string) *corev1.Probe {
	if p == nil {
		return nil
	}
	out := &corev1.Probe{
		InitialDelaySeconds: x.seconds(p.InitialDelay.Duration, field+".initialDelay", false),
		PeriodSeconds:       x.seconds(p.Period.Duration, field+".period", true),
		TimeoutSeconds:      x.seconds(p.Timeout.Duration, field+".timeout", true),
		SuccessThreshold:    int32(p.SuccessThreshold),
		FailureThreshold:    int32(p.FailureThreshold),
	}
	switch {
	case p.HTTP != nil:
		h := &corev1.HTTPGetAction{Path: p.HTTP.Path, Port: intstr.FromInt32(int32(p.HTTP.Port))}
		for _, hd := range p.HTTP.Headers {
			h.HTTPHeaders = append(h.HTTPHeaders, corev1.HTTPHeader{Name: hd.Name, Value: hd.Value})
		}
		out.HTTPGet = h
	case p.TCP != nil:
		out.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(p.TCP.Port))}
	case p.Exec != nil:
		out.Exec = &corev1.ExecAction{Command: p.Exec.Command}
	}
	return out
}

// seconds rounds d up to whole seconds (at least 1 when atLeastOne),
// warning when that changes it.
func (x *exporter) seconds(d time.Duration, field string, atLeastOne bool) int32 {
	s := int32((d + time.Second - 1) / time.Second)
	if atLeastOne && s < 1 {
		s = 1
	}
	if time.Duration(s)*time.Second != d {
		x.warn(field, "%s rounded up to %ds: Kubernetes probes count whole seconds", api.Duration{Duration: d}, s)
	}
	return s
}

// securityContext returns the container's privileges: the App's own
// settings, and under the restricted profile what Pod Security Standards'
// restricted level also asks (runAsNonRoot, no privilege escalation,
// seccomp RuntimeDefault).
func (x *exporter) securityContext(s api.AppSecurity) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		RunAsUser:      s.RunAsUser,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if s.ReadOnlyRootFilesystem {
		sc.ReadOnlyRootFilesystem = ptr(true)
	}
	if !s.Capabilities.IsZero() {
		sc.Capabilities = &corev1.Capabilities{}
		for _, c := range s.Capabilities.Add {
			sc.Capabilities.Add = append(sc.Capabilities.Add, corev1.Capability(capName(c)))
		}
		for _, c := range s.Capabilities.Drop {
			sc.Capabilities.Drop = append(sc.Capabilities.Drop, corev1.Capability(capName(c)))
		}
	}
	if policy.Profile(x.app.Spec.Security.Profile) == policy.Restricted {
		sc.RunAsNonRoot = ptr(true)
		sc.AllowPrivilegeEscalation = ptr(false)
	}
	return sc
}

// capName writes a capability as Kubernetes does: upper case, no CAP_.
func capName(c string) string {
	return strings.TrimPrefix(strings.ToUpper(c), "CAP_")
}

// podSpec returns the pod spec of a revision and its pod annotations.
func (x *exporter) podSpec(rev api.Revision) (corev1.PodSpec, map[string]string) {
	ps := corev1.PodSpec{Containers: []corev1.Container{x.container(rev)}}
	for _, v := range rev.Spec.Volumes {
		ps.Volumes = append(ps.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.Name, ReadOnly: v.ReadOnly},
		}})
	}
	annos := x.identity(rev, &ps, x.podAnnotations(rev))
	return ps, annos
}

func ptr[T any](v T) *T { return &v }
