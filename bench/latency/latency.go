// Package latency summarises the timed runs of a benchmark for its
// markdown tables: nearest-rank percentiles, labelled as the maximum when
// there are too few runs for them to be anything else.
package latency

import (
	"fmt"
	"sort"
	"time"
)

// index is the nearest-rank position of percentile p (0..1) among n
// sorted values.
func index(n int, p float64) int { return int(p*float64(n-1) + 0.5) }

// Percentile returns percentile p (0..1) of ds by nearest rank; 0 when ds
// is empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[index(len(s), p)]
}

// MS formats d in milliseconds with one decimal: "12.3 ms".
func MS(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// Cell formats percentile p of ds for a table. When p falls on the
// largest run (p99 of fewer than 100 runs, p90 of fewer than 10) the cell
// says so: "173.6 ms (max)".
func Cell(ds []time.Duration, p float64) string { return CellFunc(ds, p, MS) }

// CellFunc is Cell with the value formatted by format.
func CellFunc(ds []time.Duration, p float64, format func(time.Duration) string) string {
	v := format(Percentile(ds, p))
	if p < 1 && len(ds) > 0 && index(len(ds), p) == len(ds)-1 {
		v += " (max)"
	}
	return v
}
