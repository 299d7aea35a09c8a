package compose

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestStoreSecretsSupported: store secrets with mode, uid and gid, file
// secrets with them and secrets from the environment are not reported;
// the file secret with a mode and the environment secret are copied into
// the store, a plain file secret elsewhere stays a bind mount, one in the
// directory of copied secrets is copied too.
func TestStoreSecretsSupported(t *testing.T) {
	dir := t.TempDir()
	yml := `name: sec
services:
  app:
    image: busybox
    secrets:
      - source: store
        target: /etc/app/token
        mode: 0440
        uid: "10"
        gid: "20"
      - source: file
        mode: 0444
      - env
      - source: plain
        target: /opt/plain
      - beside
secrets:
  store: {external: true, name: app/token}
  file: {file: ./f}
  env: {environment: HOME}
  plain: {file: ./f}
  beside: {file: ./f}
`
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), LoadOptions{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, is := range Unsupported(p) {
		got[is.Key] = true
	}
	if len(got) != 0 {
		t.Fatalf("unsupported keys %v, want none", got)
	}
	app := p.Services["app"]
	copied := map[string]bool{}
	for _, sec := range app.Secrets {
		copied[sec.Source] = copiedSecret(p, app, sec)
	}
	if want := map[string]bool{"store": false, "file": true, "env": true, "plain": false, "beside": true}; !reflect.DeepEqual(copied, want) {
		t.Fatalf("copied %v, want %v", copied, want)
	}
	ms, err := mounts(p, app, "sec-app-1")
	if err != nil {
		t.Fatal(err)
	}
	var binds []string
	for _, m := range ms {
		binds = append(binds, m.Target)
	}
	if !reflect.DeepEqual(binds, []string{"/opt/plain"}) {
		t.Fatalf("bind mounts at %v, want only /opt/plain", binds)
	}
	for _, tc := range []struct{ project, source, want string }{
		{"shop", "db_password", "compose.shop.db-password"},
		{"my_app", "API.Token", "compose.my-app.api-token"},
	} {
		if got, err := projectSecretName(tc.project, tc.source); err != nil || got != tc.want {
			t.Errorf("projectSecretName(%q, %q) = %q, %v; want %q", tc.project, tc.source, got, err, tc.want)
		}
	}
	if _, err := projectSecretName("shop", "__"); err == nil {
		t.Error("a secret name of no letter or digit was accepted")
	}
	sec := p.Services["app"].Secrets[0]
	if name, key := storeSecretName(p.Secrets["store"]); name != "app" || key != "token" {
		t.Fatalf("store secret name %q key %q, want app and token", name, key)
	}
	if tg := secretTarget(sec); tg != "/etc/app/token" {
		t.Fatalf("target %q", tg)
	}
	if tg := secretTarget(p.Services["app"].Secrets[1]); tg != "/run/secrets/file" {
		t.Fatalf("default target %q, want /run/secrets/file", tg)
	}
}
