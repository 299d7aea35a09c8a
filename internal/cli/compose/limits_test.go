package compose

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestCreateRequestLimits checks that ulimits (both forms) and sysctls
// (map and list forms) reach the container's config, and that a
// non-namespaced sysctl is refused naming its line.
func TestCreateRequestLimits(t *testing.T) {
	opts := loadInline(t, `name: lim
services:
  app:
    image: busybox
    ulimits:
      nproc: 512
      nofile: {soft: 1024, hard: 2048}
    sysctls:
      net.core.somaxconn: 1024
  list:
    image: busybox
    sysctls: ["kernel.shmmax=65536"]
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
	want := []api.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 512}}
	if !reflect.DeepEqual(req.Config.Ulimits, want) {
		t.Errorf("ulimits %+v, want %+v", req.Config.Ulimits, want)
	}
	if !reflect.DeepEqual(req.Config.Sysctls, map[string]string{"net.core.somaxconn": "1024"}) {
		t.Errorf("sysctls %v", req.Config.Sysctls)
	}
	if req, err = CreateRequest(p, p.Services["list"], 1); err != nil || req.Config.Sysctls["kernel.shmmax"] != "65536" {
		t.Errorf("list sysctls %v, %v", req.Config.Sysctls, err)
	}

	opts = loadInline(t, "name: lim\nservices:\n  app:\n    image: busybox\n    sysctls: {vm.swappiness: \"10\"}\n")
	if p, err = Load(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	_, err = CreateRequest(p, p.Services["app"], 1)
	if err == nil || !strings.Contains(err.Error(), "compose.yaml:5") || !strings.Contains(err.Error(), `"vm.swappiness"`) {
		t.Errorf("vm.swappiness: got %v, want an error naming the line and the key", err)
	}
}
