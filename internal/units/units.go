// Package units formats sizes for messages, as the daemon's flags take
// them: powers of 1024.
package units

import "strconv"

// Bytes formats n with the largest binary unit that divides it exactly:
// "4 MiB", "20 GiB", "1 KiB"; otherwise "1000 bytes".
func Bytes(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
