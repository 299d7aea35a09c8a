package compose

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// loadInline is the LoadOptions of a directory holding compose.yaml.
func loadInline(t *testing.T, yaml string) LoadOptions {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return LoadOptions{WorkDir: dir}
}

// TestCreateRequestHostsDNS checks that extra_hosts, dns, dns_search and
// dns_opt reach the container's config, and that a bad value is refused
// naming its line.
func TestCreateRequestHostsDNS(t *testing.T) {
	opts := loadInline(t, `name: hd
services:
  app:
    image: busybox
    extra_hosts: ["db.internal:10.1.2.3", "gw=host-gateway"]
    dns: [9.9.9.9, 1.1.1.1]
    dns_search: example.com
    dns_opt: ["ndots:2"]
`)
	p, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	req, err := CreateRequest(p, p.Services["app"], 1)
	if err != nil {
		t.Fatal(err)
	}
	c := req.Config
	if want := []string{"db.internal:10.1.2.3", "gw:host-gateway"}; !reflect.DeepEqual(c.ExtraHosts, want) {
		t.Errorf("extra hosts %q, want %q", c.ExtraHosts, want)
	}
	if !reflect.DeepEqual(c.DNS, []string{"9.9.9.9", "1.1.1.1"}) || !reflect.DeepEqual(c.DNSSearch, []string{"example.com"}) || !reflect.DeepEqual(c.DNSOptions, []string{"ndots:2"}) {
		t.Errorf("dns %q search %q options %q", c.DNS, c.DNSSearch, c.DNSOptions)
	}

	opts = loadInline(t, "name: hd\nservices:\n  app:\n    image: busybox\n    dns: [nine.nine]\n")
	if p, err = Load(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	_, err = CreateRequest(p, p.Services["app"], 1)
	if err == nil || !strings.Contains(err.Error(), "compose.yaml:5") || !strings.Contains(err.Error(), `"nine.nine"`) {
		t.Errorf("bad dns: got %v, want an error naming the line and the value", err)
	}
}
