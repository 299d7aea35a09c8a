package unpack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/unpack"
)

// TestWriter unpacks a layer larger than the Writer's queue written in
// small pieces, and a bad layer whose producer goes on writing after the
// unpack failed.
func TestWriter(t *testing.T) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: int64(len(big))})
	tw.Write(big)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "big"})
	tw.Close()

	dir := t.TempDir()
	w := unpack.NewWriter(context.Background(), dir, unpack.Options{})
	for b := layer.Bytes(); len(b) > 0; {
		n := min(len(b), 1000)
		w.Write(b[:n])
		b = b[n:]
	}
	st, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 2 {
		t.Errorf("entries = %d, want 2", st.Entries)
	}
	got, err := os.ReadFile(filepath.Join(dir, "big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big: %d bytes, %v; want the %d bytes written", len(got), err, len(big))
	}

	var bad bytes.Buffer
	tw = tar.NewWriter(&bad)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../escape", Mode: 0o644})
	tw.Close()
	dir = t.TempDir()
	w = unpack.NewWriter(context.Background(), dir, unpack.Options{})
	w.Write(bad.Bytes())
	w.Write(layer.Bytes()) // after the failure: discarded, never blocks
	if _, err := w.Close(); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Close = %v, want an ErrInvalid error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed unpack left %d entries", len(ents))
	}
}
