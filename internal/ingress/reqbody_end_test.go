package ingress

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// readAcrossEnd has b read one byte that the client sends only after the
// exchange's end, as a trickling client does when the end comes while the
// proxy waits for its next byte.
func readAcrossEnd(t *testing.T, b *timedBody, w *io.PipeWriter) {
	t.Helper()
	go func() {
		for time.Now().Before(b.end) {
			time.Sleep(time.Until(b.end) + time.Millisecond)
		}
		w.Write([]byte("x"))
	}()
	if n, err := b.Read(make([]byte, 8)); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v; want the byte", n, err)
	}
}

// TestBodyWaitedForAtTheEndTimedOut: a body the proxy was still waiting
// for when the exchange's end came did not arrive in time (408), even
// when the transport gave up before a read failed: the byte that came
// after the end could not be written to the replica's closed connection.
func TestBodyWaitedForAtTheEndTimedOut(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	b := newTimedBody(httptest.NewRecorder(), r, time.Second, time.Now().Add(20*time.Millisecond))
	readAcrossEnd(t, b, w)
	if err, stalled := b.failure(); !errors.Is(err, os.ErrDeadlineExceeded) || stalled {
		t.Fatalf("failure() = %v, stalled %v; want the deadline passed, not a stall", err, stalled)
	}
}

// TestBodyNotWaitedForAtTheEnd: a body whose last read returned before
// the end, with no read under way (the replica was slow to take it, or to
// answer), is not the client's failure (the answer is a 504), nor is a
// complete one.
func TestBodyNotWaitedForAtTheEnd(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	b := newTimedBody(httptest.NewRecorder(), r, time.Second, time.Now().Add(time.Hour))
	go w.Write([]byte("x"))
	if n, err := b.Read(make([]byte, 8)); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v; want the byte", n, err)
	}
	b.end = time.Now().Add(time.Microsecond) // the end comes after the read
	time.Sleep(time.Millisecond)
	if err, _ := b.failure(); err != nil {
		t.Fatalf("failure() = %v; want none: the proxy was not waiting for the client", err)
	}

	r, w = io.Pipe()
	b = newTimedBody(httptest.NewRecorder(), r, time.Second, time.Now().Add(20*time.Millisecond))
	readAcrossEnd(t, b, w)
	w.Close()
	if n, err := b.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want the end of the body", n, err)
	}
	if err, _ := b.failure(); err != nil {
		t.Fatalf("failure() = %v; want none: the whole body came", err)
	}
}
