package cli

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

// TestDaemonMaxImageSizeFlag: a bad or tiny --max-image-size is refused
// before the daemon starts, naming the flag.
func TestDaemonMaxImageSizeFlag(t *testing.T) {
	for value, want := range map[string]string{
		"lots": `invalid size "lots" for --max-image-size`,
		"10k":  "--max-image-size 10k is too small: give at least 1m",
	} {
		c := newDaemonCmd(&globals{stdout: io.Discard, stderr: io.Discard})
		c.SetArgs([]string{"--root", t.TempDir(), "--max-image-size", value})
		c.SetOut(io.Discard)
		c.SetErr(io.Discard)
		err := c.ExecuteContext(context.Background())
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("--max-image-size %s: got %v, want %q", value, err, want)
		}
	}
}
