package runc

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

// stdinChunk bounds each message to conmon's attach socket: it is a
// SOCK_SEQPACKET socket, and conmon reads a message into a buffer of
// 32 KiB less one byte, so a longer message would be cut.
const stdinChunk = 16 << 10

// AttachStdin connects to conmon's attach socket, which conmon makes in
// the bundle directory when it runs with --stdin: its messages go to the
// process's stdin, and when the connection ends conmon closes that.
func (r *Runtime) AttachStdin(ctx context.Context, id string) (io.WriteCloser, error) {
	m, err := r.loadMeta(id)
	if err != nil {
		return nil, err
	}
	if !m.Stdin {
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
		return nil, errdefs.Unavailable("connect to the stdin of %s: %w", id, err)
	}
	return &stdinConn{conn}, nil
}

// stdinConn writes to conmon's attach socket in messages it reads whole.
type stdinConn struct{ net.Conn }

func (c *stdinConn) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		k, err := c.Conn.Write(p[:min(len(p), stdinChunk)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
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
