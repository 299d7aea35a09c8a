package compose

import (
	"context"
	"testing"
)

// TestCreateRequestInit checks that init: true is supported and reaches
// the container's config, and that its absence leaves Init off.
func TestCreateRequestInit(t *testing.T) {
	opts := loadInline(t, `name: ini
services:
  app:
    image: busybox
    init: true
  plain:
    image: busybox
`)
	p, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	for name, want := range map[string]bool{"app": true, "plain": false} {
		req, err := CreateRequest(p, p.Services[name], 1)
		if err != nil {
			t.Fatal(err)
		}
		if req.Config.Init != want {
			t.Errorf("%s: Init = %v, want %v", name, req.Config.Init, want)
		}
	}
}
