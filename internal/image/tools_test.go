package image

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/image/imagetest"
)

// The store is a real OCI layout: skopeo and umoci read it.
func TestLayoutReadableBySkopeoAndUmoci(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	imported := imagetest.BusyboxImage(t)
	if _, err := s.Import(ctx, bytes.NewReader(imagetest.DockerArchive(t, imagetest.Tagged{Ref: "busybox:latest", Image: imported}))); err != nil {
		t.Fatal(err)
	}
	built := imagetest.Image(t, v1.Config{Entrypoint: []string{"/app"}},
		imagetest.Layer(t, imagetest.File{Name: "app", Body: "#!/bin/sh\n", Mode: 0o755}))
	save(t, s, built, "localhost/built:1", "127.0.0.1:5000/team/built:2")
	save(t, s, imagetest.RandomImage(t, 1)) // untagged: invisible to the tools, harmless
	layoutDir := filepath.Join(root, "images")

	tests := []struct {
		ref    string
		layers int
	}{
		{ref: "localhost/busybox:latest", layers: 1},
		{ref: "localhost/built:1", layers: 1},
		{ref: "127.0.0.1:5000/team/built:2", layers: 1},
	}
	for _, tt := range tests {
		t.Run("skopeo "+tt.ref, func(t *testing.T) {
			out, err := exec.Command("skopeo", "inspect", "oci:"+layoutDir+":"+tt.ref).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect: %v\n%s", err, out)
			}
			var got struct {
				Digest string
				Layers []string
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("skopeo output: %v\n%s", err, out)
			}
			im := mustInspect(t, s, tt.ref)
			if got.Digest != im.Digest || len(got.Layers) != tt.layers {
				t.Errorf("skopeo sees digest %s and %d layers, want %s and %d", got.Digest, len(got.Layers), im.Digest, tt.layers)
			}
			out, err = exec.Command("skopeo", "inspect", "--config", "oci:"+layoutDir+":"+tt.ref).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect --config: %v\n%s", err, out)
			}
			var cfg v1.ConfigFile
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatalf("skopeo config output: %v\n%s", err, out)
			}
			if cfg.OS != "linux" || len(cfg.RootFS.DiffIDs) != tt.layers || strings.Join(cfg.Config.Cmd, " ") != strings.Join(im.Config.Cmd, " ") {
				t.Errorf("skopeo sees config %+v, store has %+v", cfg, im.Config)
			}
		})
	}
	t.Run("umoci ls", func(t *testing.T) {
		out, err := exec.Command("umoci", "ls", "--layout", layoutDir).CombinedOutput()
		if err != nil {
			t.Fatalf("umoci ls: %v\n%s", err, out)
		}
		got := strings.Fields(string(out))
		for _, tt := range tests {
			if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+tt.ref+" ") {
				t.Errorf("umoci ls does not list %s: %q", tt.ref, out)
			}
		}
	})
	t.Run("umoci stat", func(t *testing.T) {
		out, err := exec.Command("umoci", "stat", "--image", layoutDir+":localhost/built:1").CombinedOutput()
		if err != nil {
			t.Fatalf("umoci stat: %v\n%s", err, out)
		}
	})
}

func mustInspect(t *testing.T, s *Store, ref string) api.Image {
	t.Helper()
	im, err := s.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return im
}
