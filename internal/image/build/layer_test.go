package build

import (
	"context"
	"slices"
	"testing"
)

// TestLayerWritesParentDirs checks that a layer carries the directories
// on the way to its entries, as they are in the tree: unpacked alone as an
// overlay lower directory, it must not give them an unpacker's defaults
// (root, 0755) over a lower layer's owner.
func TestLayerWritesParentDirs(t *testing.T) {
	dir := writeContext(t, "FROM base\nUSER app:staff\nWORKDIR relative/dir\nWORKDIR sub\n", nil)
	img, err := Build(context.Background(), Options{ContextDir: dir}, testImages(t))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	if len(layers) != 3 {
		t.Fatalf("%d layers, want the base's and one per WORKDIR", len(layers))
	}
	got := listLayer(t, layers[2])
	want := []string{"drwxr-xr-x 0:0 /srv", "drwxr-xr-x 1000:50 /srv/relative", "drwxr-xr-x 1000:50 /srv/relative/dir", "drwxr-xr-x 1000:50 /srv/relative/dir/sub"}
	if !slices.Equal(got, want) {
		t.Errorf("second WORKDIR's layer %q, want %q", got, want)
	}
}
