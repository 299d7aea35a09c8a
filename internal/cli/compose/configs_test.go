package compose

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api"
)

// TestConfigsCopied: configs from the environment, inline content and a
// file with a mode are not reported unsupported, are not bind mounted,
// and are in the archive put into the container at their targets with
// their mode (default 0444), uid and gid; a plain file config stays a
// bind mount; an external config is reported.
func TestConfigsCopied(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("APP_CONF", "from the environment\n")
	yml := `name: cfg
services:
  app:
    image: busybox
    configs:
      - source: env
        target: /etc/app/conf.txt
        mode: 0440
        uid: "10"
        gid: "20"
      - inline
      - source: owned
        target: /etc/owned
        mode: 0400
      - source: plain
        target: /etc/plain
configs:
  env: {environment: APP_CONF}
  inline: {content: "inline text"}
  owned: {file: ./f}
  plain: {file: ./f}
`
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644)
	os.WriteFile(filepath.Join(dir, "f"), []byte("from a file"), 0o644)
	p, err := Load(context.Background(), LoadOptions{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if is := Unsupported(p); len(is) != 0 {
		t.Fatalf("unsupported %v, want none", is)
	}
	app := p.Services["app"]
	ms, err := mounts(p, app, "cfg-app-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != api.MountBind || ms[0].Target != "/etc/plain" {
		t.Fatalf("mounts %+v, want only the plain file config bound at /etc/plain", ms)
	}
	b, err := configArchive(p, app)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		mode     int64
		uid, gid int
		content  string
	}
	got := map[string]entry{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		got[hdr.Name] = entry{hdr.Mode, hdr.Uid, hdr.Gid, string(c)}
	}
	want := map[string]entry{
		"etc/app/conf.txt": {0o440, 10, 20, "from the environment\n"},
		"inline":           {0o444, 0, 0, "inline text"},
		"etc/owned":        {0o400, 0, 0, "from a file"},
	}
	if len(got) != len(want) {
		t.Fatalf("archive %+v, want %+v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
}

// TestConfigsHash: a service without copied configs keeps ConfigHash;
// a changed config from the environment changes the service's hash, so
// up recreates it.
func TestConfigsHash(t *testing.T) {
	dir := t.TempDir()
	yml := `name: cfg
services:
  plain:
    image: busybox
  app:
    image: busybox
    configs: [env]
configs:
  env: {environment: CFG_HASH}
`
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644)
	load := func(v string) *types.Project {
		t.Helper()
		t.Setenv("CFG_HASH", v)
		p, err := Load(context.Background(), LoadOptions{WorkDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := load("one"), load("two")
	if got := serviceHash(a, a.Services["plain"]); got != ConfigHash(a.Services["plain"]) {
		t.Errorf("a service without configs: hash %s, want ConfigHash", got)
	}
	if serviceHash(a, a.Services["app"]) == serviceHash(b, b.Services["app"]) {
		t.Errorf("a changed config kept the service's hash")
	}
	if serviceHash(a, a.Services["app"]) != serviceHash(load("one"), a.Services["app"]) {
		t.Errorf("the same config changed the service's hash")
	}
}

// TestConfigsUnsupported: an external config is reported, a uid that is
// not a number is refused naming the config.
func TestConfigsUnsupported(t *testing.T) {
	dir := t.TempDir()
	yml := `name: cfg
services:
  app:
    image: busybox
    configs:
      - ext
      - source: bad
        uid: nobody
configs:
  ext: {external: true}
  bad: {content: x}
`
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644)
	p, err := Load(context.Background(), LoadOptions{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	is := Unsupported(p)
	if len(is) != 1 || is[0].Key != "configs.ext" || !strings.Contains(is[0].Why, "external") {
		t.Fatalf("unsupported %v, want configs.ext (external)", is)
	}
	if _, err := configArchive(p, p.Services["app"]); err == nil || !strings.Contains(err.Error(), `config bad: uid "nobody" must be a number`) {
		t.Fatalf("configArchive: %v, want the uid refused", err)
	}
}
