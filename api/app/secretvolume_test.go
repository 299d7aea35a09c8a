package app

import (
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestValidateSecretVolume(t *testing.T) {
	for _, tc := range []struct {
		name string
		sv   api.SecretVolume
		want []string
	}{
		{"every key", api.SecretVolume{Name: "shop.db"}, nil},
		{"items", api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: "password"}, {Key: "cert", Path: "tls.crt"}}}, nil},
		{"no name", api.SecretVolume{}, []string{"spec.volumes[0].secret.name: required: the secret whose keys become files (see skiff secret ls)"}},
		{"bad name", api.SecretVolume{Name: "DB"}, []string{"spec.volumes[0].secret.name: must be a secret name: lowercase letters, digits and '-', in labels joined by '.'"}},
		{"bad key", api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: "a/b"}}}, []string{"spec.volumes[0].secret.items[0].key: must be a secret key: letters, digits, '-', '_' and '.'"}},
		{"dot-dot key without a path", api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: ".."}}}, []string{`spec.volumes[0].secret.items[0].key: ".." cannot name a file: give a path of letters, digits, '-', '_' and '.', other than . and ..`}},
		{"path with a slash", api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: "a", Path: "../etc/passwd"}}}, []string{`spec.volumes[0].secret.items[0].path: "../etc/passwd" cannot name a file: give a path of letters, digits, '-', '_' and '.', other than . and ..`}},
		{"one file twice", api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: "a", Path: "x"}, {Key: "x"}}}, []string{"spec.volumes[0].secret.items[1].key: duplicate file x (also spec.volumes[0].secret.items[0])"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := validApp()
			sv := tc.sv
			a.Spec.Volumes = []api.VolumeMount{{Name: "creds", MountPath: "/run/secrets/db", Secret: &sv}}
			var got []string
			for _, e := range Validate(a) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestSecretVolumeIsRevisioned: the secret volume is part of the
// revision, and clones share none of it.
func TestSecretVolumeIsRevisioned(t *testing.T) {
	a := validApp()
	a.Spec.Volumes = []api.VolumeMount{{Name: "creds", MountPath: "/run/secrets", Secret: &api.SecretVolume{Name: "db", Items: []api.SecretItem{{Key: "a"}}}}}
	b := Clone(a)
	b.Spec.Volumes[0].Secret.Items[0].Key = "b"
	if a.Spec.Volumes[0].Secret.Items[0].Key != "a" {
		t.Fatal("Clone shares the secret volume")
	}
	if !NeedsNewRevision(a.Spec, b.Spec) {
		t.Fatal("a change of the secret volume's items makes no new revision")
	}
	rs := RevisionSpecOf(a.Spec)
	rs.Volumes[0].Secret.Name = "other"
	if a.Spec.Volumes[0].Secret.Name != "db" {
		t.Fatal("the revision spec shares the secret volume")
	}
}
