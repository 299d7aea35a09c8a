package kube

import (
	"encoding/json"
	"slices"
)

// translatedFields are the App spec fields an export translates (or
// keeps as annotations), by JSON path; a field of a list element or map
// is covered by its parent.
var translatedFields = []string{
	"image", "command", "args", "env", "port", "volumes", "traffic", "revisionHistoryLimit",
	"ingress.host", "ingress.pathPrefix", "ingress.external", "ingress.timeout", "ingress.tls", "ingress.redirectHTTPS",
	"resources.cpu", "resources.memory", "resources.pids",
	"scale.min", "scale.max", "scale.concurrency", "scale.rps", "scale.cpuUtilization", "scale.memoryUtilization", "scale.idleTimeout", "scale.prewarm",
	"probes.startup", "probes.readiness", "probes.liveness",
	"security.profile", "security.runAsUser", "security.readOnlyRootFilesystem", "security.capabilities", "security.hostUsers",
	"identity.enabled", "identity.audiences",
	"network.allowFrom",
}

// untranslated returns the paths of the set fields of spec that no
// export translates (fields newer than the translation), so that each
// is named in a warning rather than dropped.
func untranslated(spec any) []string {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	c := consumed{}
	c.use(translatedFields...)
	var out []string
	walk("", m, c, nil, &out)
	slices.Sort(out)
	return out
}
