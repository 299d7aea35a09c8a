package image

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/imagetest"
)

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	host := imagetest.StartRegistry(t)
	src, _ := newStore(t)
	img := imagetest.BusyboxImage(t)
	ref := host + "/test/busybox:1"
	save(t, src, img, ref)
	if err := src.Push(ctx, ref, RemoteOptions{}); err != nil {
		t.Fatalf("Push: %v", err)
	}

	dst, root := newStore(t)
	got, err := dst.Pull(ctx, ref, RemoteOptions{})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if got.ID != idOf(t, img) || got.Digest != digestOf(t, img) {
		t.Errorf("pulled ID %s digest %s, want %s %s", got.ID, got.Digest, idOf(t, img), digestOf(t, img))
	}
	if !slices.Equal(got.Tags, []string{ref}) {
		t.Errorf("pulled tags %q", got.Tags)
	}
	r, err := dst.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != 1 || !slices.Equal(r.Config.Config.Cmd, []string{"sh"}) {
		t.Errorf("Resolved = %+v", r)
	}

	// By digest: stored as NAME@DIGEST, same image.
	byDigest := host + "/test/busybox@" + digestOf(t, img)
	got, err = dst.Pull(ctx, byDigest, RemoteOptions{})
	if err != nil {
		t.Fatalf("Pull by digest: %v", err)
	}
	if want := []string{ref, byDigest}; !slices.Equal(got.Tags, want) {
		t.Errorf("tags after pull by digest = %q, want %q", got.Tags, want)
	}
	if n, _ := dst.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	checkConsistent(t, root)

	// Retag and push under another name, pull that.
	if err := dst.Tag(ctx, ref, host+"/other/name:2"); err != nil {
		t.Fatal(err)
	}
	if err := dst.Push(ctx, host+"/other/name:2", RemoteOptions{}); err != nil {
		t.Fatalf("Push retagged: %v", err)
	}
	third, _ := newStore(t)
	if got, err := third.Pull(ctx, host+"/other/name:2", RemoteOptions{Insecure: true}); err != nil || got.ID != idOf(t, img) {
		t.Fatalf("Pull retagged = %v, %v", got.ID, err)
	}
}

func TestRemoteErrors(t *testing.T) {
	ctx := context.Background()
	host := imagetest.StartRegistry(t)
	s, root := newStore(t)
	save(t, s, imagetest.RandomImage(t, 1), "local")
	before := indexJSON(t, root)
	tests := []struct {
		name  string
		do    func() error
		err   error
		parts []string
	}{
		{name: "pull unknown tag", err: errdefs.ErrNotFound, parts: []string{host + "/nope/x:1"},
			do: func() error { _, err := s.Pull(ctx, host+"/nope/x:1", RemoteOptions{}); return err }},
		{name: "pull short name goes to docker.io", err: errdefs.ErrUnavailable, parts: []string{"docker.io/library/hello:latest", "reachable"},
			do: func() error { _, err := s.Pull(ctx, "hello", RemoteOptions{}); return err }},
		{name: "pull unreachable registry", err: errdefs.ErrUnavailable, parts: []string{"127.0.0.1:1/x:1"},
			do: func() error { _, err := s.Pull(ctx, "127.0.0.1:1/x:1", RemoteOptions{}); return err }},
		{name: "pull an ID", err: errdefs.ErrInvalid, parts: []string{"image ID"},
			do: func() error { _, err := s.Pull(ctx, "sha256:"+strings.Repeat("a", 64), RemoteOptions{}); return err }},
		{name: "pull bad reference", err: errdefs.ErrInvalid,
			do: func() error { _, err := s.Pull(ctx, "Bad", RemoteOptions{}); return err }},
		{name: "bad platform", err: errdefs.ErrInvalid, parts: []string{"platform"},
			do: func() error { _, err := s.Pull(ctx, host+"/x:1", RemoteOptions{Platform: "nonsense"}); return err }},
		{name: "push unknown", err: errdefs.ErrNotFound,
			do: func() error { return s.Push(ctx, host+"/unknown:1", RemoteOptions{}) }},
		{name: "push by ID", err: errdefs.ErrInvalid, parts: []string{"by ID"},
			do: func() error {
				im, _ := s.Inspect(ctx, "local")
				return s.Push(ctx, im.ID, RemoteOptions{})
			}},
		{name: "push to unreachable registry", err: errdefs.ErrUnavailable,
			do: func() error {
				if err := s.Tag(ctx, "local", "127.0.0.1:1/x:1"); err != nil {
					return err
				}
				defer s.Remove(ctx, "127.0.0.1:1/x:1", false, nil)
				return s.Push(ctx, "127.0.0.1:1/x:1", RemoteOptions{})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.do()
			wantCategory(t, err, tt.err, tt.parts...)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
			if !bytes.Equal(before, indexJSON(t, root)) {
				t.Error("index.json changed")
			}
		})
	}
}

func TestPullPlatform(t *testing.T) {
	ctx := context.Background()
	host := imagetest.StartRegistry(t)
	imgFor := func(arch string) v1.Image {
		img := imagetest.RandomImage(t, 1)
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.Architecture = arch
		img, err := mutate.ConfigFile(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	native, foreign := imgFor(runtime.GOARCH), imgFor(other)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	ref := host + "/multi:1"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		platform string
		wantID   string
		err      error
	}{
		{name: "default is this host", wantID: idOf(t, native)},
		{name: "explicit other", platform: "linux/" + other, wantID: idOf(t, foreign)},
		{name: "missing platform", platform: "linux/s390x", err: errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			got, err := s.Pull(ctx, ref, RemoteOptions{Platform: tt.platform})
			if tt.err != nil {
				wantCategory(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.wantID {
				t.Errorf("pulled %s, want %s", got.ID, tt.wantID)
			}
		})
	}
}

// failingTransport fails every request whose path contains fail, after
// a delay that lets the other requests of a pull finish first.
type failingTransport struct {
	fail string
}

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.fail != "" && strings.Contains(r.URL.Path, f.fail) {
		time.Sleep(300 * time.Millisecond)
		return nil, errors.New("injected: connection reset")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestInterruptedPull(t *testing.T) {
	ctx := context.Background()
	host := imagetest.StartRegistry(t)
	img := imagetest.RandomImage(t, 3)
	ref := host + "/interrupted:1"
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	last, _ := ls[2].Digest()

	s, root := newStore(t)
	before := indexJSON(t, root)
	_, err := s.Pull(ctx, ref, RemoteOptions{transport: failingTransport{fail: last.String()}})
	wantCategory(t, err, errdefs.ErrUnavailable, "injected")
	if !bytes.Equal(before, indexJSON(t, root)) {
		t.Fatal("a failed pull changed index.json")
	}
	// Whatever arrived is unreferenced, and only parts of this image.
	own := blobsOf(t, img)
	left := blobNames(t, root)
	for _, b := range left {
		if !slices.Contains(own, b) || b == last.Hex {
			t.Errorf("unexpected blob %s after a failed pull", b)
		}
	}
	if len(left) == 0 {
		t.Error("no blob was kept from the interrupted pull (a retry would fetch everything again)")
	}
	resp, err := s.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.BlobsDeleted != len(left) || len(blobNames(t, root)) != 0 {
		t.Errorf("Prune = %+v, blobs left %v", resp, blobNames(t, root))
	}
	if _, err := s.Pull(ctx, ref, RemoteOptions{}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	checkConsistent(t, root)
}
