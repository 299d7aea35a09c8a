package latency

import (
	"testing"
	"time"
)

func runs(n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(n-i) * time.Millisecond // unsorted on purpose
	}
	return ds
}

func TestCell(t *testing.T) {
	tests := []struct {
		name string
		n    int
		p    float64
		want string
	}{
		{"median of 30", 30, 0.5, "16.0 ms"},
		{"p90 of 30", 30, 0.9, "27.0 ms"},
		{"p99 of 30 is the max", 30, 0.99, "30.0 ms (max)"},
		{"p99 of 100 is not", 100, 0.99, "99.0 ms"},
		{"p90 of 5 is the max", 5, 0.9, "5.0 ms (max)"},
		{"min", 30, 0, "1.0 ms"},
		{"no runs", 0, 0.5, "0.0 ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cell(runs(tc.n), tc.p); got != tc.want {
				t.Fatalf("Cell(%d runs, %v) = %q, want %q", tc.n, tc.p, got, tc.want)
			}
		})
	}
}
