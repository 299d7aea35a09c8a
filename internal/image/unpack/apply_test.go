package unpack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestEntryErrorMessage(t *testing.T) {
	err := error(&EntryError{Name: "../x", Reason: "the name climbs out of the layer root"})
	if got, want := err.Error(), `layer entry "../x": the name climbs out of the layer root`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, errdefs.ErrInvalid) || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("EntryError must match ErrInvalid and only it")
	}
	if errdefs.Category(fmt.Errorf("wrapped: %w", err)) != errdefs.ErrInvalid {
		t.Errorf("a wrapped EntryError lost its category")
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// cancelingReader cancels its context once after bytes have been read.
type cancelingReader struct {
	r      io.Reader
	after  int
	cancel context.CancelFunc
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p[:min(len(p), 4096)])
	r.after -= n
	if r.after <= 0 {
		r.cancel()
	}
	return n, err
}

func TestApplyErrors(t *testing.T) {
	requireRoot(t)
	errNetwork := errdefs.Unavailable("registry connection reset")
	layer := tarOf(dir("a/"), reg("a/f", strings.Repeat("x", 1<<20)), reg("b", "b"))
	hardlinkToLower := tarOf(hard("x", "lower-file"))

	for _, c := range []struct {
		name string
		// prepare makes the layer directory in base and returns it with
		// the input and options.
		prepare func(t *testing.T, base string) (string, io.Reader, context.Context, Options)
		// is lists the errors the result must match.
		is []error
		// keep is a file that must survive, relative to base.
		keep string
	}{
		{
			name: "missing directory",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				return filepath.Join(base, "nope"), bytes.NewReader(layer), context.Background(), Options{}
			},
			is: []error{errdefs.ErrNotFound},
		},
		{
			name: "not a directory",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				p := filepath.Join(base, "file")
				writeFile(t, p, "x")
				return p, bytes.NewReader(layer), context.Background(), Options{}
			},
			is:   []error{errdefs.ErrInvalid},
			keep: "file",
		},
		{
			name: "directory not empty",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				d := filepath.Join(base, "layer")
				writeFile(t, filepath.Join(d, "someone-elses"), "keep me")
				return d, bytes.NewReader(layer), context.Background(), Options{}
			},
			is:   []error{errdefs.ErrConflict},
			keep: "layer/someone-elses",
		},
		{
			name: "reader fails in a header",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				return mkdir(t, base, "layer"), &failingReader{data: layer[:700], err: errNetwork}, context.Background(), Options{}
			},
			is: []error{errNetwork, errdefs.ErrUnavailable},
		},
		{
			name: "reader fails in a body",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				return mkdir(t, base, "layer"), &failingReader{data: layer[:4096], err: errNetwork}, context.Background(), Options{}
			},
			is: []error{errNetwork, errdefs.ErrUnavailable},
		},
		{
			name: "context canceled before",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return mkdir(t, base, "layer"), bytes.NewReader(layer), ctx, Options{}
			},
			is: []error{context.Canceled},
		},
		{
			name: "context canceled while streaming",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				return mkdir(t, base, "layer"), &cancelingReader{r: bytes.NewReader(layer), after: 200 << 10, cancel: cancel}, ctx, Options{}
			},
			is: []error{context.Canceled},
		},
		{
			name: "lower layer missing",
			prepare: func(t *testing.T, base string) (string, io.Reader, context.Context, Options) {
				return mkdir(t, base, "layer"), bytes.NewReader(hardlinkToLower), context.Background(),
					Options{Lowers: []string{filepath.Join(base, "no-such-lower")}}
			},
			is: []error{errdefs.ErrNotFound},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			dir, r, ctx, opts := c.prepare(t, base)
			st, err := Apply(ctx, dir, r, opts)
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			for _, target := range c.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q does not match %q", err, target)
				}
			}
			var ee *EntryError
			if errors.As(err, &ee) {
				t.Errorf("error %q names an entry, but no entry is at fault", err)
			}
			if st != (Stats{}) {
				t.Errorf("stats %+v, want zero", st)
			}
			if c.keep != "" {
				if _, err := os.Stat(filepath.Join(base, c.keep)); err != nil {
					t.Errorf("%s was not left alone: %v", c.keep, err)
				}
				return
			}
			if names, err := readDirNames(dir); err == nil && len(names) > 0 {
				t.Errorf("%s holds %q after the error", dir, names)
			}
		})
	}
}

func TestApplyStats(t *testing.T) {
	requireRoot(t)
	layerDir := t.TempDir()
	layer := tarOf(dir("d/"), reg("d/a", "12345"), reg("b", "678"), sym("s", "b"), hard("h", "b"),
		reg(".wh.gone", ""), reg("d/.wh..wh..opq", ""), reg(".wh..wh.aufs", ""))
	st, err := Apply(context.Background(), layerDir, bytes.NewReader(layer), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The AUFS metadata entry is skipped, not counted.
	if want := (Stats{Entries: 7, Bytes: 8}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func mkdir(t *testing.T, base, name string) string {
	t.Helper()
	p := filepath.Join(base, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
