package stream

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		write      func(w *Writer)
		out, errs  string
		code       int
		wantErr    bool
		wantNoExit bool
	}{
		{"exit only", func(w *Writer) { w.WriteExit(api.ContainerWaitResponse{ExitCode: 3}) }, "", "", 3, false, false},
		{"both streams", func(w *Writer) {
			w.Stream(Stdout).Write([]byte("out1\n"))
			w.Stream(Stderr).Write([]byte("err1\n"))
			w.Stream(Stdout).Write([]byte("out2\n"))
			w.WriteExit(api.ContainerWaitResponse{ExitCode: 0})
		}, "out1\nout2\n", "err1\n", 0, false, false},
		{"big payload split", func(w *Writer) {
			w.Stream(Stdout).Write(bytes.Repeat([]byte("x"), MaxFrame+10))
			w.WriteExit(api.ContainerWaitResponse{ExitCode: 1})
		}, strings.Repeat("x", MaxFrame+10), "", 1, false, false},
		{"error frame", func(w *Writer) { w.WriteError(api.Error{Message: "boom", Kind: "internal"}) }, "", "", 0, true, false},
		{"truncated", func(w *Writer) { w.Stream(Stdout).Write([]byte("a")) }, "a", "", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.write(NewWriter(&buf, nil))
			var out, errs bytes.Buffer
			res, err := Copy(&buf, &out, &errs)
			if out.String() != tc.out || errs.String() != tc.errs {
				t.Fatalf("streams: %q %q", out.String(), errs.String())
			}
			var re *RemoteError
			switch {
			case tc.wantErr:
				if !errors.As(err, &re) || re.Err.Message != "boom" {
					t.Fatalf("want remote error, got %v", err)
				}
			case tc.wantNoExit:
				if !errors.Is(err, ErrNoExit) {
					t.Fatalf("want ErrNoExit, got %v", err)
				}
			default:
				if err != nil || res.ExitCode != tc.code {
					t.Fatalf("got %v %v", res, err)
				}
			}
		})
	}
}
