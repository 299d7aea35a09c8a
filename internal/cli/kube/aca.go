package kube

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// acaRevisionRE is an Azure Container Apps revision name with a numeric
// suffix ("shop--3"), which maps to a skiff revision name (shop-00003).
var acaRevisionRE = regexp.MustCompile(`^(.+)--0*([1-9][0-9]{0,4})$`)

// acaReader reads one Azure Container Apps document, recording what it
// read.
type acaReader struct {
	name  string
	c     consumed
	warns []Warning
}

func (r *acaReader) warn(field, format string, args ...any) {
	r.warns = append(r.warns, Warning{App: r.name, Field: field, Message: fmt.Sprintf(format, args...)})
}

// ImportACA turns an Azure Container Apps YAML document (as `az
// containerapp show -o yaml` prints it, or `az containerapp create
// --yaml` reads it) into an App: properties.template.containers[0],
// scale rules for HTTP concurrency, CPU and memory, ingress with its
// traffic weights, secrets (referred to, never copied), and the revision
// suffix. Everything else is listed as a Warning. Errors are
// errdefs.ErrInvalid.
func ImportACA(data []byte) (api.App, []Warning, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return api.App{}, nil, errdefs.Invalid("not an Azure Container Apps document: %v", err)
	}
	name, _ := doc["name"].(string)
	props, _ := doc["properties"].(map[string]any)
	if name == "" || props == nil {
		return api.App{}, nil, errdefs.Invalid("not an Azure Container Apps document: name and properties are required")
	}
	r := &acaReader{name: name, c: consumed{}}
	r.c.use("name", "type", "id", "location", "properties.provisioningState", "properties.runningStatus",
		"properties.latestRevisionName", "properties.latestReadyRevisionName", "properties.latestRevisionFqdn",
		"properties.outboundIpAddresses", "properties.managedEnvironmentId", "properties.environmentId",
		"properties.customDomainVerificationId", "properties.eventStreamEndpoint", "systemData", "resourceGroup")
	a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind}
	a.Metadata.Name = name
	tmpl, _ := props["template"].(map[string]any)
	if err := r.containers(&a, tmpl); err != nil {
		return api.App{}, nil, err
	}
	r.scale(&a, tmpl)
	cfg, _ := props["configuration"].(map[string]any)
	r.ingress(&a, cfg)
	r.secrets(cfg)
	var rest []string
	walk("", doc, r.c, nil, &rest)
	slices.Sort(rest)
	for _, p := range rest {
		r.warn(p, "no App field for it: not imported")
	}
	app.SetDefaults(&a)
	if err := app.Validate(a).Err(); err != nil {
		return api.App{}, r.warns, fmt.Errorf("app %s, imported: %w", name, err)
	}
	return a, r.warns, nil
}

// containers reads the first container of the template.
func (r *acaReader) containers(a *api.App, tmpl map[string]any) error {
	const p = "properties.template"
	cs, _ := tmpl["containers"].([]any)
	if len(cs) == 0 {
		return errdefs.Invalid("app %s: %s.containers: no container", r.name, p)
	}
	if len(cs) > 1 {
		r.warn(p+".containers", "an App runs one container: only the first is imported")
	}
	if s, ok := tmpl["revisionSuffix"].(string); ok {
		r.c.use(p + ".revisionSuffix")
		r.warn(p+".revisionSuffix", "skiff numbers revisions itself (%s-00001, ...): suffix %q not kept", r.name, s)
	}
	c, _ := cs[0].(map[string]any)
	cp := p + ".containers[0]"
	r.c.use(cp+".name", cp+".image", cp+".command", cp+".args")
	a.Spec.Image, _ = c["image"].(string)
	a.Spec.Command = strings_(c["command"])
	a.Spec.Args = strings_(c["args"])
	for i, e := range asList(c["env"]) {
		m, _ := e.(map[string]any)
		ep := fmt.Sprintf("%s.env[%d]", cp, i)
		v := api.EnvVar{Name: str(m["name"])}
		if ref := str(m["secretRef"]); ref != "" {
			v.SecretRef = ref + "/value"
			r.c.use(ep + ".secretRef")
		} else {
			v.Value = str(m["value"])
			r.c.use(ep + ".value")
		}
		r.c.use(ep + ".name")
		a.Spec.Env = append(a.Spec.Env, v)
	}
	if res, ok := c["resources"].(map[string]any); ok {
		r.c.use(cp+".resources.cpu", cp+".resources.memory", cp+".resources.ephemeralStorage")
		if v, ok := res["cpu"]; ok {
			a.Spec.Resources.CPU = quantity(v)
		}
		if v, ok := res["memory"]; ok {
			a.Spec.Resources.Memory = quantity(v)
		}
	}
	for i, pr := range asList(c["probes"]) {
		r.probe(a, pr, fmt.Sprintf("%s.probes[%d]", cp, i))
	}
	for i, vm := range asList(c["volumeMounts"]) {
		m, _ := vm.(map[string]any)
		vp := fmt.Sprintf("%s.volumeMounts[%d]", cp, i)
		r.c.use(vp+".volumeName", vp+".mountPath")
		a.Spec.Volumes = append(a.Spec.Volumes, api.VolumeMount{Name: str(m["volumeName"]), MountPath: str(m["mountPath"])})
	}
	for i, v := range asList(tmpl["volumes"]) {
		m, _ := v.(map[string]any)
		vp := fmt.Sprintf("%s.volumes[%d]", p, i)
		r.c.use(vp+".name", vp+".storageType", vp+".storageName")
		if t := str(m["storageType"]); t != "AzureFile" && t != "NfsAzureFile" {
			r.warn(vp+".storageType", "skiff volumes are persistent named volumes: this %s volume becomes one", nonEmpty(t, "EmptyDir"))
		}
	}
	return nil
}

func (r *acaReader) probe(a *api.App, v any, p string) {
	m, _ := v.(map[string]any)
	out := &api.Probe{}
	for _, f := range []struct {
		key string
		d   *api.Duration
	}{{"initialDelaySeconds", &out.InitialDelay}, {"periodSeconds", &out.Period}, {"timeoutSeconds", &out.Timeout}} {
		if n, ok := asInt(m[f.key]); ok {
			*f.d = api.Duration{Duration: time.Duration(n) * time.Second}
		}
	}
	out.SuccessThreshold, _ = asInt(m["successThreshold"])
	out.FailureThreshold, _ = asInt(m["failureThreshold"])
	kubeProbeDefaults(out)
	r.c.use(p+".type", p+".initialDelaySeconds", p+".periodSeconds", p+".timeoutSeconds", p+".successThreshold", p+".failureThreshold")
	if h, ok := m["httpGet"].(map[string]any); ok {
		port, _ := asInt(h["port"])
		out.HTTP = &api.HTTPGetAction{Path: str(h["path"]), Port: port}
		for _, hd := range asList(h["httpHeaders"]) {
			hm, _ := hd.(map[string]any)
			out.HTTP.Headers = append(out.HTTP.Headers, api.HTTPHeader{Name: str(hm["name"]), Value: str(hm["value"])})
		}
		r.c.use(p+".httpGet.path", p+".httpGet.port", p+".httpGet.httpHeaders")
	} else if t, ok := m["tcpSocket"].(map[string]any); ok {
		port, _ := asInt(t["port"])
		out.TCP = &api.TCPSocketAction{Port: port}
		r.c.use(p + ".tcpSocket.port")
	}
	switch str(m["type"]) {
	case "Liveness", "liveness":
		a.Spec.Probes.Liveness = out
	case "Readiness", "readiness":
		a.Spec.Probes.Readiness = out
	case "Startup", "startup":
		a.Spec.Probes.Startup = out
	default:
		r.warn(p+".type", "must be Liveness, Readiness or Startup: not imported")
	}
}

// scale reads min and max replicas and the first rule skiff can follow.
func (r *acaReader) scale(a *api.App, tmpl map[string]any) {
	const p = "properties.template.scale"
	sc, _ := tmpl["scale"].(map[string]any)
	if sc == nil {
		return
	}
	r.c.use(p+".minReplicas", p+".maxReplicas")
	if n, ok := asInt(sc["minReplicas"]); ok {
		a.Spec.Scale.Min = ptr(n)
	} else {
		a.Spec.Scale.Min = ptr(0) // Azure's default
	}
	if n, ok := asInt(sc["maxReplicas"]); ok {
		a.Spec.Scale.Max = ptr(n)
	}
	if _, ok := sc["cooldownPeriod"]; ok {
		if n, ok := asInt(sc["cooldownPeriod"]); ok {
			a.Spec.Scale.IdleTimeout = api.Duration{Duration: time.Duration(n) * time.Second}
			r.c.use(p + ".cooldownPeriod")
		}
	}
	set := false
	for i, rule := range asList(sc["rules"]) {
		m, _ := rule.(map[string]any)
		rp := fmt.Sprintf("%s.rules[%d]", p, i)
		if set {
			r.warn(rp, "an App scales on one target: only the first rule skiff can follow is imported")
			r.c.use(rp)
			continue
		}
		r.c.use(rp + ".name")
		if h, ok := m["http"].(map[string]any); ok {
			md, _ := h["metadata"].(map[string]any)
			if n, err := strconv.Atoi(str(md["concurrentRequests"])); err == nil {
				a.Spec.Scale.Concurrency = n
				set = true
				r.c.use(rp + ".http.metadata.concurrentRequests")
			}
			continue
		}
		if c, ok := m["custom"].(map[string]any); ok && (c["type"] == "cpu" || c["type"] == "memory") {
			md, _ := c["metadata"].(map[string]any)
			if n, err := strconv.Atoi(str(md["value"])); err == nil && str(md["type"]) == "Utilization" {
				if c["type"] == "cpu" {
					a.Spec.Scale.CPUUtilization = n
				} else {
					a.Spec.Scale.MemoryUtilization = n
				}
				set = true
				r.c.use(rp+".custom.type", rp+".custom.metadata.type", rp+".custom.metadata.value")
			}
		}
	}
}

// ingress reads external, target port, custom domain, the HTTPS redirect
// and the traffic weights.
func (r *acaReader) ingress(a *api.App, cfg map[string]any) {
	const p = "properties.configuration.ingress"
	in, _ := cfg["ingress"].(map[string]any)
	r.c.use("properties.configuration.activeRevisionsMode", p+".fqdn", p+".transport")
	if in == nil {
		return
	}
	r.c.use(p+".external", p+".targetPort", p+".allowInsecure")
	a.Spec.Ingress.External, _ = in["external"].(bool)
	if n, ok := asInt(in["targetPort"]); ok {
		a.Spec.Port = n
	}
	insecure, _ := in["allowInsecure"].(bool)
	a.Spec.Ingress.RedirectHTTPS = !insecure
	for i, d := range asList(in["customDomains"]) {
		m, _ := d.(map[string]any)
		dp := fmt.Sprintf("%s.customDomains[%d]", p, i)
		if i == 0 {
			a.Spec.Ingress.Host = str(m["name"])
			r.c.use(dp + ".name")
			if _, ok := m["certificateId"]; ok {
				r.c.use(dp+".certificateId", dp+".bindingType")
				r.warn(dp+".certificateId", "an App names certificate files on the machine: set spec.ingress.tls to the certificate's files")
			}
		}
	}
	for i, t := range asList(in["traffic"]) {
		m, _ := t.(map[string]any)
		tp := fmt.Sprintf("%s.traffic[%d]", p, i)
		r.c.use(tp+".weight", tp+".latestRevision", tp+".revisionName", tp+".label")
		w, _ := asInt(m["weight"])
		tt := api.TrafficTarget{Percent: w, Tag: str(m["label"])}
		if lr, _ := m["latestRevision"].(bool); lr {
			tt.Latest = true
		} else if rev := str(m["revisionName"]); rev != "" {
			sm := acaRevisionRE.FindStringSubmatch(rev)
			if sm == nil || sm[1] != r.name {
				r.warn(tp+".revisionName", "revision %s has no skiff name (APP--N maps to APP-0000N): its %d%% go to the latest revision", rev, w)
				tt.Latest = true
			} else {
				n, _ := strconv.Atoi(sm[2])
				tt.Revision = app.RevisionName(r.name, n)
				r.warn(tp+".revisionName", "revision %s is %s on skiff: traffic to it needs that revision on this machine", rev, tt.Revision)
			}
		}
		a.Spec.Traffic = append(a.Spec.Traffic, tt)
	}
	a.Spec.Traffic = mergeLatest(a.Spec.Traffic)
}

// mergeLatest merges the targets that follow the latest revision into
// one (an App has at most one latest target), keeping the first tag.
func mergeLatest(ts []api.TrafficTarget) []api.TrafficTarget {
	var out []api.TrafficTarget
	li := -1
	for _, t := range ts {
		if t.Latest && li >= 0 {
			out[li].Percent += t.Percent
			if out[li].Tag == "" {
				out[li].Tag = t.Tag
			}
			continue
		}
		if t.Latest {
			li = len(out)
		}
		out = append(out, t)
	}
	return out
}

// secrets lists the App's secrets: their values are never copied.
func (r *acaReader) secrets(cfg map[string]any) {
	for i, s := range asList(cfg["secrets"]) {
		m, _ := s.(map[string]any)
		sp := fmt.Sprintf("properties.configuration.secrets[%d]", i)
		r.c.use(sp)
		n := str(m["name"])
		r.warn(sp, "secret %s is referred to as %s/value: create it with skiff secret create %s --from-literal value=... (its value is not imported)", n, n, n)
	}
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func strings_(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, str(x))
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// quantity writes an ACA resource (0.5, "1.0Gi") as skiff's quantity.
func quantity(v any) string {
	s := strings.TrimSpace(str(v))
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return s
	}
	return q.String()
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
