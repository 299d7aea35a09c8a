package image

import (
	"bytes"
	"context"
	"testing"

	"skiff.dev/skiff/internal/image/imagetest"
)

// BenchmarkResolveWarm measures Resolve of an image whose layers are
// already unpacked: the cost on a container's start path.
func BenchmarkResolveWarm(b *testing.B) {
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Save(ctx, imagetest.BusyboxImage(b), "busybox"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Resolve(ctx, "busybox"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Resolve(ctx, "busybox"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveCold measures the first Resolve of the busybox image:
// decompressing, unpacking, checking and syncing its layer.
func BenchmarkResolveCold(b *testing.B) {
	ctx := context.Background()
	img := imagetest.BusyboxImage(b)
	for b.Loop() {
		b.StopTimer()
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Save(ctx, img, "busybox"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Resolve(ctx, "busybox"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportDockerSave measures importing the busybox image from a
// docker save archive.
func BenchmarkImportDockerSave(b *testing.B) {
	ctx := context.Background()
	archive := imagetest.DockerArchive(b, imagetest.Tagged{Ref: "busybox:latest", Image: imagetest.BusyboxImage(b)})
	b.SetBytes(int64(len(archive)))
	for b.Loop() {
		b.StopTimer()
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Import(ctx, bytes.NewReader(archive)); err != nil {
			b.Fatal(err)
		}
	}
}
