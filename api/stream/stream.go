// Package stream is the framing of skiff's streamed responses (attach and
// exec): a sequence of frames, each an 8-byte header — the frame type in
// byte 0, three zero bytes, the payload length as a big-endian uint32 —
// followed by the payload.
//
// Frame types: 1 stdout bytes, 2 stderr bytes, 3 the exit status (JSON
// api.ContainerWaitResponse; always the last frame of a stream that ended
// well), 4 an error (JSON api.Error; last frame). Stdin, where a stream
// takes it, is sent raw on the upgraded connection and ended with a
// half-close.
package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"skiff.dev/skiff/api"
)

// Frame types.
const (
	Stdout byte = 1
	Stderr byte = 2
	Exit   byte = 3
	Error  byte = 4
)

// MaxFrame is the largest payload a reader accepts.
const MaxFrame = 1 << 20

// Writer writes frames to an underlying writer, flushing after each.
// It is safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	flush func()
	hdr   [8]byte
}

// NewWriter returns a Writer; flush, if not nil, is called after each frame.
func NewWriter(w io.Writer, flush func()) *Writer {
	return &Writer{w: w, flush: flush}
}

// WriteFrame writes one frame of type t.
func (w *Writer) WriteFrame(t byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 || t == Exit || t == Error {
		n := min(len(p), MaxFrame)
		w.hdr = [8]byte{t}
		binary.BigEndian.PutUint32(w.hdr[4:], uint32(n))
		if _, err := w.w.Write(w.hdr[:]); err != nil {
			return err
		}
		if _, err := w.w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if t == Exit || t == Error {
			break
		}
	}
	if w.flush != nil {
		w.flush()
	}
	return nil
}

// Stream returns an io.Writer whose writes become frames of type t.
func (w *Writer) Stream(t byte) io.Writer { return streamWriter{w, t} }

type streamWriter struct {
	w *Writer
	t byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.w.WriteFrame(s.t, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteExit writes the final exit frame.
func (w *Writer) WriteExit(r api.ContainerWaitResponse) error {
	b, _ := json.Marshal(r)
	return w.WriteFrame(Exit, b)
}

// WriteError writes a final error frame.
func (w *Writer) WriteError(e api.Error) error {
	b, _ := json.Marshal(e)
	return w.WriteFrame(Error, b)
}

// ErrNoExit is returned by Copy when the stream ended without an exit or
// error frame (the daemon went away).
var ErrNoExit = errors.New("stream ended before the process exited")

// Copy reads frames from r, copying stdout and stderr payloads to the
// given writers, until an exit frame (returned) or an error frame
// (returned as *api.Error inside RemoteError).
func Copy(r io.Reader, stdout, stderr io.Writer) (api.ContainerWaitResponse, error) {
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return api.ContainerWaitResponse{}, ErrNoExit
			}
			return api.ContainerWaitResponse{}, err
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		if n > MaxFrame {
			return api.ContainerWaitResponse{}, fmt.Errorf("stream frame of %d bytes exceeds the %d byte limit", n, MaxFrame)
		}
		if int(n) > len(buf) {
			buf = make([]byte, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return api.ContainerWaitResponse{}, ErrNoExit
		}
		switch hdr[0] {
		case Stdout:
			if stdout != nil {
				stdout.Write(p)
			}
		case Stderr:
			if stderr != nil {
				stderr.Write(p)
			}
		case Exit:
			var res api.ContainerWaitResponse
			if err := json.Unmarshal(p, &res); err != nil {
				return res, fmt.Errorf("bad exit frame: %w", err)
			}
			return res, nil
		case Error:
			var e api.Error
			if err := json.Unmarshal(p, &e); err != nil {
				return api.ContainerWaitResponse{}, fmt.Errorf("bad error frame: %w", err)
			}
			return api.ContainerWaitResponse{}, &RemoteError{Err: e}
		default:
			return api.ContainerWaitResponse{}, fmt.Errorf("unknown stream frame type %d", hdr[0])
		}
	}
}

// RemoteError is an error frame received from the daemon.
type RemoteError struct{ Err api.Error }

func (e *RemoteError) Error() string { return e.Err.Message }
