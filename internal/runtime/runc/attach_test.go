package runc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// readAll reads an attachment's output to its end, by stream, within 60s.
func readAll(t *testing.T, a runtime.Attachment) (stdout, stderr []byte) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for {
			s, p, err := a.ReadOutput()
			if err != nil {
				done <- err
				return
			}
			if s == runtime.Stderr {
				stderr = append(stderr, p...)
			} else {
				stdout = append(stdout, p...)
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("read output: %v", err)
		}
	case <-time.After(60 * time.Second):
		a.Close()
		t.Fatalf("the output did not end within 60s")
	}
	return stdout, stderr
}

// TestAttachStdinAndOutput: 8 MiB written to the stdin of cat come back
// through the same attachment while it is still being written (conmon
// stops a container whose attach socket is not read), and CloseStdin
// ends the input while the output goes on to its end.
func TestAttachStdinAndOutput(t *testing.T) {
	r := newRuntime(t)
	c := createOpts(t, r, api.ContainerConfig{OpenStdin: true}, runtime.CreateOpts{Stdin: true}, "cat")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := r.Attach(ctx, c.id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, 8<<20)
	for i := range in {
		in[i] = byte(i*31 + i>>13)
	}
	go func() {
		a.Write(in)
		a.CloseStdin()
	}()
	out, errOut := readAll(t, a)
	if !bytes.Equal(out, in) || len(errOut) != 0 {
		t.Fatalf("got %d bytes of stdout (equal: %v) and %q on stderr, want the %d bytes written", len(out), bytes.Equal(out, in), errOut, len(in))
	}
	if st, err := r.Wait(ctx, c.id); err != nil || st.Code != 0 {
		t.Fatalf("wait: %+v %v", st, err)
	}
}

// TestAttachStreams: output is told apart by stream; an attachment
// without stdin is refused stdin; a container gone is ErrConflict.
func TestAttachStreams(t *testing.T) {
	r := newRuntime(t)
	c := create(t, r, api.ContainerConfig{}, 0, "sh", "-c", "echo out; echo err >&2; echo out2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := r.Attach(ctx, c.id, true); err == nil {
		t.Fatal("attach with stdin to a container without stdin succeeded")
	}
	a, err := r.Attach(ctx, c.id, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	out, errOut := readAll(t, a)
	if string(out) != "out\nout2\n" || string(errOut) != "err\n" {
		t.Fatalf("stdout %q, stderr %q", out, errOut)
	}
	if _, err := r.Wait(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	// conmon exits a moment after the exit file: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := r.Attach(ctx, c.id, false)
		if err != nil {
			if !errors.Is(err, errdefs.ErrConflict) {
				t.Fatalf("attach to an exited container: %v, want ErrConflict", err)
			}
			break
		}
		a.Close()
		if time.Now().After(deadline) {
			t.Fatal("attach still succeeds 10s after the container exited")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
