package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestStoreSecretsSupported: store secrets with mode, uid and gid are not
// reported; mode, uid or gid on a file secret are (the file is bound as
// is), as is an environment secret.
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
secrets:
  store: {external: true, name: app/token}
  file: {file: ./f}
  env: {environment: HOME}
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
	want := map[string]bool{"secrets.file.mode|uid|gid": true, "secrets.env": true}
	if len(got) != len(want) || !got["secrets.file.mode|uid|gid"] || !got["secrets.env"] {
		t.Fatalf("unsupported keys %v, want %v", got, want)
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
