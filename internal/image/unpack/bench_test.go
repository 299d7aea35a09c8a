package unpack

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// benchLayer is a 50 MiB layer shaped like a runtime image: 20 files of
// 1 MiB, 2500 files of 12 KiB in 250 directories, 500 symlinks.
var benchLayer = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	content := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	var es []ent
	es = append(es, dir("big/"))
	for i := range 20 {
		es = append(es, reg(fmt.Sprintf("big/blob%02d", i), content(1<<20)))
	}
	for d := range 250 {
		name := fmt.Sprintf("usr/lib/pkg%03d/", d)
		es = append(es, dir(name))
		for f := range 10 {
			es = append(es, reg(fmt.Sprintf("%sfile%d.so", name, f), content(12<<10)))
		}
		es = append(es, sym(name+"link0", "file0.so"), sym(name+"link1", "/usr/lib/x"))
	}
	return tarOf(es...)
})

// BenchmarkApply unpacks benchLayer with Apply and, side by side, with
// GNU tar (same owners, xattrs) as the peer.
func BenchmarkApply(b *testing.B) {
	requireRoot(b)
	layer := benchLayer()
	run := func(b *testing.B, unpack func(dir string) error) {
		base := b.TempDir()
		b.SetBytes(int64(len(layer)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			dir := filepath.Join(base, fmt.Sprint(i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := unpack(dir); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("skiff", func(b *testing.B) {
		run(b, func(dir string) error {
			_, err := Apply(context.Background(), dir, bytes.NewReader(layer), Options{})
			return err
		})
	})
	b.Run("gnu-tar", func(b *testing.B) {
		if _, err := exec.LookPath("tar"); err != nil {
			b.Skip("no tar")
		}
		run(b, func(dir string) error {
			cmd := exec.Command("tar", "-x", "--same-owner", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", "-", "-C", dir)
			cmd.Stdin = bytes.NewReader(layer)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("tar: %v: %s", err, out)
			}
			return nil
		})
	})
}

// TestApplyLargeLayer checks what the benchmark measures: the layer
// unpacks completely and Stats count it.
func TestApplyLargeLayer(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	st, err := Apply(context.Background(), dir, bytes.NewReader(benchLayer()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Entries: 1 + 20 + 250*(1+10+2), Bytes: 20<<20 + 2500*12<<10}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if got := len(readTree(t, dir)); got != want.Entries+2 { // + the implicit usr/ and usr/lib/
		t.Errorf("%d nodes on disk, want %d", got, want.Entries+2)
	}
}
