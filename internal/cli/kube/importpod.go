package kube

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/api"
)

// podDefaults are the values an API server writes into a pod template
// that an App has no use for; an import passes over them silently.
var podDefaults = map[string]any{
	"restartPolicy":                               "Always",
	"dnsPolicy":                                   "ClusterFirst",
	"schedulerName":                               "default-scheduler",
	"terminationGracePeriodSeconds":               30,
	"containers[*].terminationMessagePath":        "/dev/termination-log",
	"containers[*].terminationMessagePolicy":      "File",
	"containers[*].imagePullPolicy":               "IfNotPresent",
	"containers[*].ports[*].protocol":             "TCP",
	"containers[*].readinessProbe.httpGet.scheme": "HTTP",
	"containers[*].livenessProbe.httpGet.scheme":  "HTTP",
	"containers[*].startupProbe.httpGet.scheme":   "HTTP",
	"volumes[*].persistentVolumeClaim.readOnly":   false,
}

// podReader reads an App's runnable part from a pod template, recording
// what it read.
type podReader struct {
	app   string
	ref   string // the object and the pod spec's path, for warnings
	warns *[]Warning
	// kubeDefaults gives probes Kubernetes' defaults for what they leave
	// out (period 10s), rather than skiff's.
	kubeDefaults bool
}

// warn records a field of the pod spec ("containers[0].env[2]") that
// could not be expressed.
func (r *podReader) warn(field, format string, args ...any) {
	*r.warns = append(*r.warns, Warning{App: r.app, Field: r.ref + "." + field, Message: fmt.Sprintf(format, args...)})
}

// readPod fills the runnable part of spec from tpl and warns about every
// field of tpl.Spec it could not express. skiffEnv drops the variables
// skiff sets itself (PORT, SKIFF_APP, SKIFF_REVISION).
func (r *podReader) readPod(tpl corev1.PodTemplateSpec, spec *api.AppSpec) {
	ps := tpl.Spec
	c := consumed{}
	if len(ps.Containers) == 0 {
		r.warn("containers", "no container: the App gets no image")
		return
	}
	if len(ps.Containers) > 1 {
		r.warn("containers", "an App runs one container: only %s is imported", ps.Containers[0].Name)
	}
	ct := ps.Containers[0]
	c.use("containers[0].name", "containers[0].image", "containers[0].command", "containers[0].args")
	spec.Image, spec.Command, spec.Args = ct.Image, ct.Command, ct.Args
	if img, ok := tpl.Annotations[annoImage]; ok {
		spec.Image = img
	}
	if len(ct.Ports) > 0 {
		spec.Port = int(ct.Ports[0].ContainerPort)
		c.use("containers[0].ports[0].containerPort", "containers[0].ports[0].name")
	}
	r.readEnv(ct, spec, c)
	r.readResources(ct, spec, c, tpl.Annotations)
	spec.Probes.Startup = r.readProbe(ct.StartupProbe, ct, c, "containers[0].startupProbe")
	spec.Probes.Readiness = r.readProbe(ct.ReadinessProbe, ct, c, "containers[0].readinessProbe")
	spec.Probes.Liveness = r.readProbe(ct.LivenessProbe, ct, c, "containers[0].livenessProbe")
	r.readIdentity(ps, ct, tpl.Annotations, spec, c)
	r.readVolumes(ps, ct, spec, c)
	r.readSecurity(ps, ct, spec, c)
	for _, p := range leftovers(&ps, c, podDefaults) {
		r.warn(p, "no App field for it: not imported")
	}
}

func (r *podReader) readEnv(ct corev1.Container, spec *api.AppSpec, c consumed) {
	for i, e := range ct.Env {
		p := fmt.Sprintf("containers[0].env[%d]", i)
		switch {
		case e.ValueFrom == nil && (e.Name == envPort || e.Name == envApp || e.Name == envRevision):
			c.use(p) // skiff sets them itself
		case e.ValueFrom == nil:
			spec.Env = append(spec.Env, api.EnvVar{Name: e.Name, Value: e.Value})
			c.use(p)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			spec.Env = append(spec.Env, api.EnvVar{Name: e.Name, SecretRef: ref.Name + "/" + ref.Key})
			c.use(p+".name", p+".valueFrom.secretKeyRef.name", p+".valueFrom.secretKeyRef.key")
		}
	}
}

func (r *podReader) readResources(ct corev1.Container, spec *api.AppSpec, c consumed, annos map[string]string) {
	pick := func(n corev1.ResourceName) string {
		l, hasL := ct.Resources.Limits[n]
		q, hasR := ct.Resources.Requests[n]
		switch {
		case hasL:
			c.use("containers[0].resources.limits." + string(n))
			if hasR {
				c.use("containers[0].resources.requests." + string(n))
				if q.Cmp(l) != 0 {
					r.warn("containers[0].resources.requests."+string(n), "skiff has one value per resource: the limit %s is imported, the request %s is not", l.String(), q.String())
				}
			}
			return l.String()
		case hasR:
			c.use("containers[0].resources.requests." + string(n))
			r.warn("containers[0].resources.requests."+string(n), "imported as the limit %s (skiff's one value is both)", q.String())
			return q.String()
		}
		return ""
	}
	spec.Resources.CPU = pick(corev1.ResourceCPU)
	spec.Resources.Memory = pick(corev1.ResourceMemory)
	if v, ok := annos[annoPids]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			*r.warns = append(*r.warns, Warning{App: r.app, Field: "metadata.annotations." + annoPids, Message: fmt.Sprintf("not a number: %q", v)})
		}
		spec.Resources.Pids = n
	}
}

// readProbe converts one probe; a named port is resolved through the
// container's ports.
func (r *podReader) readProbe(p *corev1.Probe, ct corev1.Container, c consumed, path string) *api.Probe {
	if p == nil {
		return nil
	}
	c.use(path+".initialDelaySeconds", path+".periodSeconds", path+".timeoutSeconds", path+".successThreshold", path+".failureThreshold")
	out := &api.Probe{
		InitialDelay:     secondsDuration(p.InitialDelaySeconds),
		Period:           secondsDuration(p.PeriodSeconds),
		Timeout:          secondsDuration(p.TimeoutSeconds),
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	switch {
	case p.HTTPGet != nil:
		h := &api.HTTPGetAction{Path: p.HTTPGet.Path, Port: r.port(p.HTTPGet.Port, ct, path+".httpGet.port")}
		for _, hd := range p.HTTPGet.HTTPHeaders {
			h.Headers = append(h.Headers, api.HTTPHeader{Name: hd.Name, Value: hd.Value})
		}
		out.HTTP = h
		c.use(path+".httpGet.path", path+".httpGet.port", path+".httpGet.httpHeaders")
	case p.TCPSocket != nil:
		out.TCP = &api.TCPSocketAction{Port: r.port(p.TCPSocket.Port, ct, path+".tcpSocket.port")}
		c.use(path + ".tcpSocket.port")
	case p.Exec != nil:
		out.Exec = &api.ExecAction{Command: p.Exec.Command}
		c.use(path + ".exec.command")
	default:
		r.warn(path, "only httpGet, tcpSocket and exec probes have an App counterpart: not imported")
		return nil
	}
	if r.kubeDefaults {
		kubeProbeDefaults(out)
	}
	return out
}

func (r *podReader) port(p intstr.IntOrString, ct corev1.Container, path string) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range ct.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	if p.StrVal != "" {
		r.warn(path, "port %q is not a port of the container: the App's port is used", p.StrVal)
	}
	return 0
}

// kubeProbeDefaults fills in Kubernetes' probe defaults where they
// differ from skiff's: a probe written for Kubernetes without a period
// is probed every 10s there.
func kubeProbeDefaults(p *api.Probe) {
	if p.Period.Duration == 0 {
		p.Period.Duration = 10 * time.Second
	}
}

func secondsDuration(s int32) api.Duration {
	return api.Duration{Duration: time.Duration(s) * time.Second}
}

// readVolumes imports the mounts of PersistentVolumeClaims as named
// volumes (named after the claim).
func (r *podReader) readVolumes(ps corev1.PodSpec, ct corev1.Container, spec *api.AppSpec, c consumed) {
	claims := map[string]string{}
	for i, v := range ps.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = v.PersistentVolumeClaim.ClaimName
			c.use(fmt.Sprintf("volumes[%d].name", i), fmt.Sprintf("volumes[%d].persistentVolumeClaim.claimName", i))
		}
	}
	for i, m := range ct.VolumeMounts {
		p := fmt.Sprintf("containers[0].volumeMounts[%d]", i)
		if c[p] {
			continue // the identity token's
		}
		claim, ok := claims[m.Name]
		if !ok {
			r.warn(p, "volume %s is not a PersistentVolumeClaim: an App mounts named volumes only; not imported", m.Name)
			c.use(p)
			continue
		}
		spec.Volumes = append(spec.Volumes, api.VolumeMount{Name: claim, MountPath: m.MountPath, ReadOnly: m.ReadOnly})
		c.use(p+".name", p+".mountPath", p+".readOnly")
	}
	for i, v := range ps.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly {
			c.use(fmt.Sprintf("volumes[%d].persistentVolumeClaim.readOnly", i))
		}
	}
}

// readSecurity imports runAsUser, readOnlyRootFilesystem and
// capabilities; what the restricted profile adds (runAsNonRoot, no
// privilege escalation, seccomp RuntimeDefault) is read over silently,
// since the profile (an annotation) says it.
func (r *podReader) readSecurity(ps corev1.PodSpec, ct corev1.Container, spec *api.AppSpec, c consumed) {
	if psc := ps.SecurityContext; psc != nil && psc.RunAsUser != nil {
		spec.Security.RunAsUser = psc.RunAsUser
		c.use("securityContext.runAsUser")
	}
	sc := ct.SecurityContext
	if sc == nil {
		return
	}
	const p = "containers[0].securityContext"
	c.use(p+".runAsUser", p+".readOnlyRootFilesystem", p+".capabilities.add", p+".capabilities.drop",
		p+".runAsNonRoot", p+".allowPrivilegeEscalation", p+".seccompProfile.type")
	if sc.RunAsUser != nil {
		spec.Security.RunAsUser = sc.RunAsUser
	}
	if sc.ReadOnlyRootFilesystem != nil {
		spec.Security.ReadOnlyRootFilesystem = *sc.ReadOnlyRootFilesystem
	}
	if sc.Capabilities != nil {
		for _, x := range sc.Capabilities.Add {
			spec.Security.Capabilities.Add = append(spec.Security.Capabilities.Add, string(x))
		}
		for _, x := range sc.Capabilities.Drop {
			spec.Security.Capabilities.Drop = append(spec.Security.Capabilities.Drop, string(x))
		}
	}
	if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		r.warn(p+".seccompProfile", "skiff runs every App with its default seccomp profile: %s is not imported", sc.SeccompProfile.Type)
	}
	if sc.Privileged != nil && *sc.Privileged {
		c.use(p + ".privileged")
		r.warn(p+".privileged", "Apps never run privileged: not imported")
	}
}
