package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		4 << 20: "4 MiB", 20 << 30: "20 GiB", 1000: "1000 bytes", 1 << 10: "1 KiB", 1<<20 + 1: "1048577 bytes", 0: "0 bytes",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
