package app

import (
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestValidateSecurity(t *testing.T) {
	neg := int64(-1)
	tests := []struct {
		name string
		sec  api.AppSecurity
		want string // "" for valid
	}{
		{"empty", api.AppSecurity{}, ""},
		{"hardened", api.AppSecurity{Profile: "restricted", Capabilities: api.Capabilities{Drop: []string{"ALL"}, Add: []string{"cap_net_bind_service"}}}, ""},
		{"bad profile", api.AppSecurity{Profile: "strict"}, "spec.security.profile: must be privileged, baseline or restricted"},
		{"negative uid", api.AppSecurity{RunAsUser: &neg}, "spec.security.runAsUser: must be a uid"},
		{"bad capability", api.AppSecurity{Capabilities: api.Capabilities{Drop: []string{"ALL", "NET ADMIN"}}}, "spec.security.capabilities.drop[1]: must be a capability name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := api.App{APIVersion: api.AppAPIVersion, Kind: api.AppKind, Metadata: api.ObjectMeta{Name: "shop"},
				Spec: api.AppSpec{Image: "shop:1", Security: tt.sec}}
			SetDefaults(&a)
			err := Validate(a).Err()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}
