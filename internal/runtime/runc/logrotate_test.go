package runc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestRotationKeepsFiles checks that a rotation keeping files files
// (the current one included) shifts older files up to .files-1 and
// drops the rest, as conmon replaces the log again and again.
func TestRotationKeepsFiles(t *testing.T) {
	for _, files := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(files), func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "ctr.log")
			write := func(s string) { // as conmon does: a new file renamed over the log
				if err := os.WriteFile(log+".tmp", []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(log+".tmp", log); err != nil {
					t.Fatal(err)
				}
			}
			write("gen0")
			r := &rotation{logPath: log, files: files}
			if err := r.sync(); err != nil {
				t.Fatal(err)
			}
			for gen := 1; gen <= 4; gen++ {
				write(fmt.Sprintf("gen%d", gen))
				r.rotated()
			}
			kept := files
			if kept == 0 {
				kept = 2
			}
			for n := 1; n <= 4; n++ {
				data, err := os.ReadFile(fmt.Sprintf("%s.%d", log, n))
				if n < kept {
					if want := fmt.Sprintf("gen%d", 4-n); string(data) != want {
						t.Errorf("%d files: .%d = %q, %v; want %q", files, n, data, err, want)
					}
				} else if err == nil {
					t.Errorf("%d files: .%d exists", files, n)
				}
			}
		})
	}
}
