package cli

import (
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"skiff.dev/skiff/api/client"
)

// chunks is a reader that returns one chunk per Read, then EOF.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

func TestDetachReader(t *testing.T) {
	const p, q = "\x10", "\x11"
	tests := []struct {
		name     string
		in       []string
		out      string
		detached bool
	}{
		{"plain keys", []string{"ls\r", "exit\r"}, "ls\rexit\r", false},
		{"sequence", []string{"ab" + p + q + "cd"}, "ab", true},
		{"sequence across reads", []string{"ab" + p, q + "cd"}, "ab", true},
		{"sequence alone", []string{p, q}, "", true},
		{"^P then another key", []string{"a" + p + "b"}, "a" + p + "b", false},
		{"^P ^P ^Q", []string{p + p + q}, p, true},
		{"^Q alone", []string{q + "x"}, q + "x", false},
		{"^P at the end", []string{"a" + p}, "a" + p, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				in := chunks(append([]string(nil), tc.in...))
				var r io.Reader = &detachReader{r: &in}
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				got, err := io.ReadAll(r)
				if string(got) != tc.out {
					t.Errorf("one byte %v: passed %q, want %q", oneByte, got, tc.out)
				}
				if errors.Is(err, client.ErrDetached) != tc.detached || (err != nil && !errors.Is(err, client.ErrDetached)) {
					t.Errorf("one byte %v: err %v, detached want %v", oneByte, err, tc.detached)
				}
			}
		})
	}
}
