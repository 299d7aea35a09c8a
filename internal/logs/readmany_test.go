package logs_test

import (
	"path/filepath"
	"testing"

	"skiff.dev/skiff/internal/logs"
)

// TestReadManyRotated checks that a log keeping more than one rotated
// file (--log-opt max-file) is read oldest first, .3, .2, .1, then the
// current file, whole and with a tail that reaches into the oldest.
func TestReadManyRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	write(t, path+".3", recs(0, 2))
	write(t, path+".2", recs(2, 4))
	write(t, path+".1", recs(4, 6))
	write(t, path, recs(6, 8))
	for _, tc := range []struct {
		name string
		opts logs.Options
		want []string
	}{
		{"all", logs.Options{Tail: -1}, lines(0, 8)},
		{"tail into .2", logs.Options{Tail: 5}, lines(3, 8)},
		{"tail into .3", logs.Options{Tail: 7}, lines(1, 8)},
		{"since", logs.Options{Tail: -1, Since: at(3)}, lines(3, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := collect(t, t.Context(), path, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			assertLines(t, got, tc.want)
		})
	}
}
