package runc

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"

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
