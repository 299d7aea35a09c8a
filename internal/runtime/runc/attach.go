package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// stdinChunk bounds each message to conmon's attach socket: it is a
// SOCK_SEQPACKET socket, and conmon reads a message into a buffer of
// 32 KiB less one byte, so a longer message would be cut.
const stdinChunk = 16 << 10

// outputMessage bounds a message conmon writes to an attach socket: one
// byte naming the pipe, then at most one read of the container's pipe
// (8 KiB in conmon 2.1.6; room is left for larger reads).
const outputMessage = 64<<10 + 1

// conmon's names of the pipes (stdpipe_t), the first byte of each output
// message on the attach socket.
const (
	conmonStdout = 2
	conmonStderr = 3
)

// Attach connects to conmon's attach socket, which conmon makes in the
// bundle directory for every container. conmon writes each piece of the
// container's output to every connection, after the log, with a blocking
// write; with --stdin, a connection's messages go to the process's stdin,
// and its end (a read of zero bytes) closes that unless
// --leave-stdin-open (a terminal).
func (r *Runtime) Attach(ctx context.Context, id string, stdin bool) (runtime.Attachment, error) {
	m, err := r.loadMeta(id)
	if err != nil {
		return nil, err
	}
	if stdin && !m.Stdin {
		return nil, errdefs.Conflict("container %s was created without stdin open: create it with stdin (skiff run -i)", id)
	}
	// The bundle's path may be longer than a socket address allows: go
	// through a descriptor of the directory, as conmon does.
	dir, err := unix.Open(m.Bundle, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errdefs.Unavailable("open the bundle of %s: %w", id, err)
	}
	defer unix.Close(dir)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixpacket", filepath.Join(fmt.Sprintf("/proc/self/fd/%d", dir), "attach"))
	if err != nil {
		if errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.Conflict("attach to %s: the container has exited", id)
		}
		return nil, errdefs.Unavailable("connect to the stdio of %s: %w", id, err)
	}
	return &attachment{
		conn: conn.(*net.UnixConn), buf: make([]byte, outputMessage),
		// Closing would close the process's stdin, which this
		// attachment was not given: drain instead (see Close).
		keepStdin: m.Stdin && !m.Terminal && !stdin,
	}, nil
}

// attachment is a connection to conmon's attach socket.
type attachment struct {
	conn      *net.UnixConn
	buf       []byte
	keepStdin bool
	closed    atomic.Bool
	closeOnce sync.Once
}

var _ runtime.Attachment = (*attachment)(nil)

func (a *attachment) ReadOutput() (runtime.Stream, []byte, error) {
	for {
		n, _, flags, _, err := a.conn.ReadMsgUnix(a.buf, nil)
		if a.closed.Load() {
			return 0, nil, net.ErrClosed
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) {
				return 0, nil, io.EOF
			}
			return 0, nil, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return 0, nil, fmt.Errorf("read container output: a message of conmon's was longer than %d bytes", len(a.buf))
		}
		switch a.buf[0] {
		case conmonStdout:
			return runtime.Stdout, a.buf[1:n], nil
		case conmonStderr:
			return runtime.Stderr, a.buf[1:n], nil
		}
		// Nothing else is output; skip it.
	}
}

// Write sends p to the process's stdin in messages conmon reads whole.
func (a *attachment) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		k, err := a.conn.Write(p[:min(len(p), stdinChunk)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// CloseStdin shuts the connection down for writing: conmon reads its end.
func (a *attachment) CloseStdin() error { return a.conn.CloseWrite() }

// Close closes the connection; one that must keep the process's stdin
// open is read in the background to its end instead (conmon closes it
// when the container has exited), so conmon is never kept waiting.
func (a *attachment) Close() error {
	a.closeOnce.Do(func() {
		a.closed.Store(true)
		if !a.keepStdin {
			a.conn.Close()
			return
		}
		go func() {
			defer a.conn.Close()
			buf := make([]byte, outputMessage)
			for {
				if _, err := a.conn.Read(buf); err != nil {
					return
				}
			}
		}()
	})
	return nil
}

// Resize asks conmon, through the control fifo it makes in the bundle
// directory, to resize the container's terminal. conmon takes sizes up
// to 1000×1000.
func (r *Runtime) Resize(ctx context.Context, id string, size specs.Box) error {
	m, err := r.loadMeta(id)
	if err != nil {
		return err
	}
	if !m.Terminal {
		return errdefs.Conflict("container %s has no terminal: create it with one (skiff run -t) to resize it", id)
	}
	if size.Height == 0 || size.Width == 0 || size.Height > 1000 || size.Width > 1000 {
		return errdefs.Invalid("terminal size %dx%d: height and width must be 1..1000", size.Height, size.Width)
	}
	// conmon holds a reader, so opening for writing does not block; a
	// gone conmon leaves no reader and the open fails at once.
	f, err := os.OpenFile(filepath.Join(m.Bundle, "ctl"), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return errdefs.Conflict("resize %s: the container is not running (%v)", id, err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "1 %d %d\n", size.Height, size.Width); err != nil {
		return errdefs.Unavailable("resize %s: %w", id, err)
	}
	return nil
}
