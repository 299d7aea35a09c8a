package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestLogEntryJSON: a line's bytes, UTF-8 or not, survive the wire, as
// base64 in "data".
func TestLogEntryJSON(t *testing.T) {
	var all strings.Builder
	for b := range 256 {
		all.WriteByte(byte(b))
	}
	for _, line := range []string{"", "plain text", "caf\xe9", all.String()} {
		in := LogEntry{Time: time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC), Stream: "stderr", Line: line, Partial: true}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var wire map[string]any
		if err := json.Unmarshal(b, &wire); err != nil {
			t.Fatal(err)
		}
		if _, ok := wire["data"].(string); !ok || wire["line"] != nil {
			t.Fatalf("wire form %s: want the bytes in data", b)
		}
		var out LogEntry
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if out != in {
			t.Fatalf("round trip of %q: got %+v", line, out)
		}
	}
}
