package build

import (
	"archive/tar"
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// TestAddCompressions checks ADD extracts archives in every compression
// docker's ADD knows.
func TestAddCompressions(t *testing.T) {
	tarball := makeTar(t, []tarEntry{{name: "greeting.txt", mode: 0o644, body: "hello\n"}})
	xzBytes := func(t *testing.T) []byte {
		var buf bytes.Buffer
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(tarball)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	zstdBytes := func(t *testing.T) []byte {
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(tarball)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	bzip2Bytes := func(t *testing.T) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "archives", "greeting.tar.bz2"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data func(t *testing.T) []byte
		want string
	}{
		{"none", func(*testing.T) []byte { return tarball }, `-rw-r--r-- 0:0 /out/greeting.txt "hello\n"`},
		{"gzip", func(t *testing.T) []byte { return gzipBytes(t, tarball) }, `-rw-r--r-- 0:0 /out/greeting.txt "hello\n"`},
		{"xz", xzBytes, `-rw-r--r-- 0:0 /out/greeting.txt "hello\n"`},
		{"zstd", zstdBytes, `-rw-r--r-- 0:0 /out/greeting.txt "hello\n"`},
		{"bzip2", bzip2Bytes, `-rw-r--r-- 0:0 /out/greeting.txt "hello from bzip2\n"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, "FROM scratch\nADD archive /out/\n", map[string]string{"archive": string(tc.data(t))})
			img, err := Build(context.Background(), Options{ContextDir: dir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			layers, _ := img.Layers()
			got := listLayer(t, layers[0])
			want := []string{"drwxr-xr-x 0:0 /out", tc.want}
			if !slices.Equal(got, want) {
				t.Errorf("layer %q, want %q", got, want)
			}
		})
	}
}

// TestBuildPlatform checks --platform, FROM --platform and the platform ARGs.
func TestBuildPlatform(t *testing.T) {
	tests := []struct {
		name, dockerfile, platform string
		want                       string // os/arch/variant of the image
		labels                     map[string]string
	}{
		{"option", "FROM scratch\nARG TARGETPLATFORM\nLABEL p=$TARGETPLATFORM\n", "linux/arm/v7", "linux/arm/v7", map[string]string{"p": "linux/arm/v7"}},
		{"alias", "FROM scratch\n", "linux/aarch64", "linux/arm64/", nil},
		{"FROM --platform", "FROM --platform=linux/riscv64 scratch\n", "", "linux/riscv64/", nil},
		{"FROM --platform with an ARG", "FROM --platform=$BUILDPLATFORM scratch AS b\nARG TARGETARCH\nLABEL t=$TARGETARCH\n", "linux/s390x",
			"linux/" + hostPlatform().Arch + "/", map[string]string{"t": "s390x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, tc.dockerfile, nil)
			img, err := Build(context.Background(), Options{ContextDir: dir, Platform: tc.platform}, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := img.ConfigFile()
			if got := cfg.OS + "/" + cfg.Architecture + "/" + cfg.Variant; got != tc.want {
				t.Errorf("platform %q, want %q", got, tc.want)
			}
			if !maps.Equal(cfg.Config.Labels, tc.labels) {
				t.Errorf("labels %v, want %v", cfg.Config.Labels, tc.labels)
			}
		})
	}
}

// TestAddLeavesOutDevices checks that ADD of a root filesystem tarball
// holding device nodes (as mmdebstrap makes them) builds, leaves the
// nodes and hardlinks to them out, and says so once.
func TestAddLeavesOutDevices(t *testing.T) {
	tarball := makeTar(t, []tarEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "./dev/", typ: tar.TypeDir, mode: 0o755},
		{name: "./dev/console", typ: tar.TypeChar, mode: 0o600},
		{name: "./dev/null", typ: tar.TypeChar, mode: 0o666},
		{name: "./dev/null2", typ: tar.TypeLink, link: "./dev/null"},
		{name: "./dev/sda", typ: tar.TypeBlock, mode: 0o660},
		{name: "./etc/hostname", mode: 0o644, body: "debian\n"},
	})
	dir := writeContext(t, "FROM scratch\nADD rootfs.tar /\n", map[string]string{"rootfs.tar": string(tarball)})
	var out bytes.Buffer
	img, err := Build(context.Background(), Options{ContextDir: dir, Progress: &out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	got := listLayer(t, layers[0])
	want := []string{"drwxr-xr-x 0:0 /dev", "drwxr-xr-x 0:0 /etc", `-rw-r--r-- 0:0 /etc/hostname "debian\n"`}
	if !slices.Equal(got, want) {
		t.Errorf("layer %q, want %q", got, want)
	}
	if n := strings.Count(out.String(), "WARNING"); n != 1 || !strings.Contains(out.String(), "left out 4 device nodes (the first dev/console)") {
		t.Errorf("want one warning about 4 device nodes, got:\n%s", out.String())
	}
}
