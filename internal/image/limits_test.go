package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
)

const testLimit = 64 << 10

// limitMessage is how every refusal over testLimit ends.
const limitMessage = "exceeds the image size limit of 64 KiB: raise it with skiff daemon --max-image-size"

func limitedStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root, WithMaxImageSize(testLimit))
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// endless gives zeros up to max bytes, then fails: a source that sends
// far more than it announced, without making an old reader hang.
type endless struct{ read, max int64 }

var errReadOn = errors.New("the blob was read on past its size")

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.max {
		return 0, errReadOn
	}
	n := int64(len(p))
	if n > e.max-e.read {
		n = e.max - e.read
	}
	clear(p[:n])
	e.read += n
	return int(n), nil
}
func (e *endless) Close() error { return nil }

func TestPutBlobChecksSizeWhileReading(t *testing.T) {
	s, root := limitedStore(t)
	want := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	for _, tc := range []struct {
		name string
		size int64
		msg  string
	}{
		{"over its descriptor", 1024, "content is larger than the 1024 bytes its descriptor says"},
		{"unknown size over the limit", -1, "blob sha256:" + strings.Repeat("ab", 32) + " " + limitMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &endless{max: 64 << 20}
			_, err := s.putBlob(context.Background(), want, tc.size, func() (io.ReadCloser, error) { return src, nil })
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an invalid-input error saying %q", err, tc.msg)
			}
			if src.read > testLimit+1 {
				t.Errorf("read %d bytes of the source, want at most the bound and one more", src.read)
			}
			if n := len(blobNames(t, root)); n != 0 {
				t.Errorf("%d blobs were left", n)
			}
		})
	}
}

// noise returns n incompressible bytes.
func noise(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return string(b)
}

func layerOf(t *testing.T, c compression.Compression, body string) v1.Layer {
	return imagetest.LayerFromTar(t, c, imagetest.Tar(t, imagetest.File{Name: "data", Body: body}))
}

func TestImportOverTheLimit(t *testing.T) {
	big := imagetest.Image(t, v1.Config{}, layerOf(t, compression.None, noise(t, 2*testLimit)))
	zeros := imagetest.Image(t, v1.Config{}, layerOf(t, compression.GZip, strings.Repeat("\x00", 4*testLimit)))
	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"OCI archive", imagetest.OCIArchive(t, imagetest.Tagged{Ref: "localhost/big:1", Image: big}), "the decompressed archive " + limitMessage},
		{"compressed OCI archive", gzipBytes(t, imagetest.OCIArchive(t, imagetest.Tagged{Ref: "localhost/big:1", Image: big})), "the decompressed archive " + limitMessage},
		{"docker save layer bomb", imagetest.DockerArchive(t, imagetest.Tagged{Ref: "localhost/zeros:1", Image: zeros}), "the decompressed layer " + limitMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, root := limitedStore(t)
			_, err := s.Import(context.Background(), bytes.NewReader(tc.archive))
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid-input error saying %q", err, tc.want)
			}
			if n := len(blobNames(t, root)); n != 0 {
				t.Errorf("%d blobs were left", n)
			}
		})
	}
}

// TestSaveOverTheLimit: the sizes a manifest lists are added up before
// any layer is fetched (pull, import and build all write images so).
func TestSaveOverTheLimit(t *testing.T) {
	s, root := limitedStore(t)
	img := imagetest.Image(t, v1.Config{},
		layerOf(t, compression.None, noise(t, testLimit/2)),
		layerOf(t, compression.None, noise(t, testLimit/2+1024)))
	_, err := s.Save(context.Background(), img, "localhost/big:1")
	want := "the image's compressed layer data, as its manifest lists it, " + limitMessage
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if n := len(blobNames(t, root)); n != 0 {
		t.Errorf("%d blobs were written", n)
	}
}

// TestUnpackOverTheLimit: small compressed layers that unpack to more
// than the limit together are refused while unpacking, leaving nothing.
func TestUnpackOverTheLimit(t *testing.T) {
	s, root := limitedStore(t)
	s.lazy = true // Resolve unpacks
	img := imagetest.Image(t, v1.Config{},
		imagetest.LayerFromTar(t, compression.GZip, imagetest.Tar(t, imagetest.File{Name: "a", Body: strings.Repeat("a", testLimit/2)})),
		imagetest.LayerFromTar(t, compression.GZip, imagetest.Tar(t, imagetest.File{Name: "b", Body: strings.Repeat("b", testLimit/2)})))
	save(t, s, img, "localhost/zeros:1")
	_, err := s.Resolve(context.Background(), "localhost/zeros:1")
	want := "the image's decompressed layer data " + limitMessage
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if n := len(layerNames(t, root)); n > 1 {
		t.Errorf("%d layers are unpacked, want at most the first", n)
	}
	// Under the limit, the same store unpacks images.
	small := imagetest.Image(t, v1.Config{}, imagetest.LayerFromTar(t, compression.GZip, imagetest.Tar(t, imagetest.File{Name: "c", Body: "c"})))
	save(t, s, small, "localhost/small:1")
	if _, err := s.Resolve(context.Background(), "localhost/small:1"); err != nil {
		t.Fatal(err)
	}
}

// TestLimitReaderAtTheBound: a source that ends, or fails, exactly at the
// bound is passed on as it is.
func TestLimitReaderAtTheBound(t *testing.T) {
	srcErr := errors.New("the source failed")
	over := errors.New("over")
	for _, tc := range []struct {
		name string
		src  io.Reader
		want error
	}{
		{"ends at the bound", strings.NewReader("1234"), nil},
		{"fails at the bound", io.MultiReader(strings.NewReader("1234"), iotest.ErrReader(srcErr)), srcErr},
		{"goes on", strings.NewReader("12345"), over},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := io.ReadAll(limitReader(tc.src, 4, over))
			if !errors.Is(err, tc.want) || string(b) != "1234" {
				t.Fatalf("got %q, %v; want 1234, %v", b, err, tc.want)
			}
		})
	}
}
