package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchContext writes a context with a real executable (the test binary)
// and many small files.
func benchContext(b *testing.B, small int) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	big, err := os.ReadFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(dir, "app"), big)
	for i := 0; i < small; i++ {
		p := filepath.Join(dir, "static", fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%04d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		writeFile(b, p, []byte(fmt.Sprintf("file %d\n", i)))
	}
	writeFile(b, filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nCOPY static /srv/static/\nENTRYPOINT [\"/app\"]\n"))
	return dir, int64(len(big))
}

// BenchmarkBuild builds FROM scratch an executable (this test binary)
// plus 2000 small files.
func BenchmarkBuild(b *testing.B) {
	dir, size := benchContext(b, 2000)
	b.SetBytes(size)
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := Build(context.Background(), Options{ContextDir: dir}, nil); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
