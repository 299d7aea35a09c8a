package kube

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/api"
)

// The identity token's place in a replica, as skiff mounts it, and its
// lifetime.
const (
	identityVolume    = "skiff-identity"
	identityDir       = "/run/secrets/skiff.dev/identity"
	identityFile      = "token"
	identityLifetime  = 3600
	annoIdentityAud   = annoPrefix + "identity-audiences"
	kindServiceAccont = "ServiceAccount"
)

// identity gives the pod of a revision with spec.identity a projected
// service-account token where skiff puts the identity token, and names
// the App's ServiceAccount. A Kubernetes token has one audience: the
// first of the App's (the API server's own when it has none); the rest
// are kept in an annotation and warned about.
func (x *exporter) identity(rev api.Revision, ps *corev1.PodSpec, annos map[string]string) map[string]string {
	id := rev.Spec.Identity
	if !id.Enabled {
		return annos
	}
	ps.ServiceAccountName = x.app.Metadata.Name
	src := &corev1.ServiceAccountTokenProjection{Path: identityFile, ExpirationSeconds: ptr(int64(identityLifetime))}
	if len(id.Audiences) > 0 {
		src.Audience = id.Audiences[0]
	}
	if len(id.Audiences) > 1 {
		if annos == nil {
			annos = map[string]string{}
		}
		annos[annoIdentityAud] = strings.Join(id.Audiences, ",")
		if rev.Name == x.latest {
			x.warn("spec.identity.audiences", "a Kubernetes service-account token has one audience: the token names %s only; the others are kept as annotation %s", id.Audiences[0], annoIdentityAud)
		}
	}
	ps.Volumes = append(ps.Volumes, corev1.Volume{Name: identityVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: src}}},
	}})
	c := &ps.Containers[0]
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: identityVolume, MountPath: identityDir, ReadOnly: true})
	if rev.Name == x.latest {
		x.add(kindServiceAccont, &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kindServiceAccont},
			ObjectMeta: x.meta(x.app.Metadata.Name, "", false),
		})
	}
	return annos
}

// readIdentity imports the identity token volume an export makes (a
// projected service-account token mounted at skiff's path).
func (r *podReader) readIdentity(ps corev1.PodSpec, ct corev1.Container, annos map[string]string, spec *api.AppSpec, c consumed) {
	for i, m := range ct.VolumeMounts {
		if m.MountPath != identityDir {
			continue
		}
		for j, v := range ps.Volumes {
			if v.Name != m.Name || v.Projected == nil || len(v.Projected.Sources) != 1 || v.Projected.Sources[0].ServiceAccountToken == nil {
				continue
			}
			spec.Identity.Enabled = true
			if a := v.Projected.Sources[0].ServiceAccountToken.Audience; a != "" {
				spec.Identity.Audiences = []string{a}
			}
			if all, ok := annos[annoIdentityAud]; ok {
				spec.Identity.Audiences = strings.Split(all, ",")
			}
			c.use(fmt.Sprintf("volumes[%d]", j), fmt.Sprintf("containers[0].volumeMounts[%d]", i), "serviceAccountName")
			return
		}
	}
}
