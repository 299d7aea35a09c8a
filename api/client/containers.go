package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/stream"
)

// CreateContainer creates (and with req.Start starts) a container.
func (c *Client) CreateContainer(ctx context.Context, req api.ContainerCreateRequest) (api.Container, error) {
	var out api.Container
	return out, c.doJSON(ctx, "POST", "/containers", nil, req, &out)
}

// Containers lists running containers, or all with all.
func (c *Client) Containers(ctx context.Context, all bool) ([]api.Container, error) {
	var out []api.Container
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	return out, c.doJSON(ctx, "GET", "/containers", q, nil, &out)
}

// Container returns one container by id, id prefix or name.
func (c *Client) Container(ctx context.Context, ref string) (api.Container, error) {
	var out api.Container
	return out, c.doJSON(ctx, "GET", "/containers/"+url.PathEscape(ref), nil, nil, &out)
}

func secondsQuery(timeout *time.Duration) url.Values {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(int(timeout.Seconds())))
	}
	return q
}

// Start starts a container.
func (c *Client) Start(ctx context.Context, ref string) error {
	return c.doJSON(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/start", nil, nil, nil)
}

// PutArchive extracts the tar archive into the directory dir of a
// container (created, running or stopped): its entries keep their
// owners and modes; missing parent directories are made.
func (c *Client) PutArchive(ctx context.Context, ref, dir string, archive io.Reader) error {
	resp, err := c.do(ctx, "PUT", "/containers/"+url.PathEscape(ref)+"/archive", url.Values{"path": {dir}}, archive, "application/x-tar")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Stop stops a container, killing it after timeout (nil: its default).
func (c *Client) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	return c.doJSON(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/stop", secondsQuery(timeout), nil, nil)
}

// Restart restarts a container.
func (c *Client) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	return c.doJSON(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/restart", secondsQuery(timeout), nil, nil)
}

// Kill sends a signal ("SIGTERM", "HUP", "9") to a container.
func (c *Client) Kill(ctx context.Context, ref, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.doJSON(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/kill", q, nil, nil)
}

// Remove removes a container; force kills a running one first.
func (c *Client) Remove(ctx context.Context, ref string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.doJSON(ctx, "DELETE", "/containers/"+url.PathEscape(ref), q, nil, nil)
}

// Wait blocks until the container is not running ("not-running") or
// removed ("removed").
func (c *Client) Wait(ctx context.Context, ref, condition string) (api.ContainerWaitResponse, error) {
	var out api.ContainerWaitResponse
	q := url.Values{}
	if condition != "" {
		q.Set("condition", condition)
	}
	return out, c.doJSON(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/wait", q, nil, &out)
}

// LogsOptions select log entries.
type LogsOptions struct {
	Follow bool
	Tail   int    // <0: all
	Since  string // RFC 3339 time, duration (10m) or Unix time
	Until  string
}

// Logs calls fn for each log entry of a container.
func (c *Client) Logs(ctx context.Context, ref string, opts LogsOptions, fn func(api.LogEntry) error) error {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Tail >= 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.Until != "" {
		q.Set("until", opts.Until)
	}
	resp, err := c.do(ctx, "GET", "/containers/"+url.PathEscape(ref)+"/logs", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readLines(resp.Body, func(line []byte) error {
		var e api.LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("decode log entry: %w", err)
		}
		if e.Stream == "" { // not an entry: the error that ends the answer
			var rec struct {
				Error *api.Error `json:"error"`
			}
			if err := json.Unmarshal(line, &rec); err != nil || rec.Error == nil {
				return fmt.Errorf("decode log entry: neither an entry nor an error: %.100q", line)
			}
			return &Error{Status: 500, API: *rec.Error}
		}
		return fn(e)
	})
}

// Attach streams a container's output to stdout and stderr until it
// exits and returns its exit status; with start it starts the container.
// A non-nil stdin is sent to the process, which must have been created
// with OpenStdin; its end (EOF) closes the process's stdin.
func (c *Client) Attach(ctx context.Context, ref string, start bool, stdin io.Reader, stdout, stderr io.Writer) (api.ContainerWaitResponse, error) {
	q := url.Values{}
	if start {
		q.Set("start", "1")
	}
	if stdin != nil {
		q.Set("stdin", "1")
		return c.upgraded(ctx, "/containers/"+url.PathEscape(ref)+"/attach", q, nil, stdin, stdout, stderr, nil)
	}
	resp, err := c.do(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/attach", q, nil, "")
	if err != nil {
		return api.ContainerWaitResponse{}, err
	}
	defer resp.Body.Close()
	return copyStream(resp.Body, stdout, stderr)
}

func copyStream(r io.Reader, stdout, stderr io.Writer) (api.ContainerWaitResponse, error) {
	res, err := stream.Copy(r, stdout, stderr)
	var re *stream.RemoteError
	if errors.As(err, &re) {
		return res, &Error{Status: 500, API: re.Err}
	}
	return res, err
}

// Exec runs a command in a running container, copying its output to
// stdout and stderr, and returns its exit code. A non-nil stdin is sent to
// the process (the connection is upgraded for that).
func (c *Client) Exec(ctx context.Context, ref string, req api.ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	req.Stdin = stdin != nil
	path := "/containers/" + url.PathEscape(ref) + "/exec"
	if !req.Stdin {
		b, _ := json.Marshal(req)
		resp, err := c.do(ctx, "POST", path, nil, bytes.NewReader(b), "application/json")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		res, err := copyStream(resp.Body, stdout, stderr)
		return res.ExitCode, err
	}
	return c.execUpgraded(ctx, path, req, stdin, stdout, stderr, nil)
}

// ExecTerminal is Exec for a request with Tty: stdin is typed into the
// process's terminal, and each size sent on resize is given to that
// terminal while the process runs.
func (c *Client) ExecTerminal(ctx context.Context, ref string, req api.ExecRequest, stdin io.Reader, stdout io.Writer, resize <-chan api.ConsoleSize) (int, error) {
	req.Tty, req.Stdin = true, true
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	return c.execUpgraded(ctx, "/containers/"+url.PathEscape(ref)+"/exec", req, stdin, stdout, io.Discard, resize)
}

// execUpgraded runs an exec whose connection is upgraded to carry stdin.
func (c *Client) execUpgraded(ctx context.Context, path string, req api.ExecRequest, stdin io.Reader, stdout, stderr io.Writer, resize <-chan api.ConsoleSize) (int, error) {
	b, _ := json.Marshal(req)
	res, err := c.upgraded(ctx, path, nil, b, stdin, stdout, stderr, resize)
	return res.ExitCode, err
}

// upgraded posts body (JSON, if any) to path on a connection upgraded to
// a raw duplex stream: stdin goes up it (a half-close ends it), frames
// come down to stdout and stderr. resize, with an exec session, passes
// terminal sizes on.
func (c *Client) upgraded(ctx context.Context, path string, q url.Values, body []byte, stdin io.Reader, stdout, stderr io.Writer, resize <-chan api.ConsoleSize) (api.ContainerWaitResponse, error) {
	// Speak HTTP/1.1 by hand on a fresh connection so it can be upgraded
	// to a raw duplex stream.
	conn, err := c.dial(ctx)
	if err != nil {
		return api.ContainerWaitResponse{}, c.connError(err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	hreq, _ := http.NewRequest("POST", c.url(path, q), bytes.NewReader(body))
	if len(body) > 0 {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", "skiff-stream")
	c.authorize(hreq)
	if err := hreq.Write(conn); err != nil {
		return api.ContainerWaitResponse{}, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, hreq)
	if err != nil {
		return api.ContainerWaitResponse{}, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return api.ContainerWaitResponse{}, decodeError(resp)
	}
	if session := resp.Header.Get(api.ExecSessionHeader); session != "" && resize != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case size := <-resize:
					b, _ := json.Marshal(size)
					if resp, err := c.do(ctx, "POST", "/exec/"+url.PathEscape(session)+"/resize", nil, bytes.NewReader(b), "application/json"); err == nil {
						resp.Body.Close()
					}
				case <-done:
					return
				}
			}
		}()
	}
	var detached atomic.Bool
	go func() {
		_, err := io.Copy(conn, stdin)
		if errors.Is(err, ErrDetached) {
			detached.Store(true)
			conn.Close()
			return
		}
		if uc, ok := conn.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
	}()
	res, err := copyStream(br, stdout, stderr)
	if detached.Load() {
		return res, ErrDetached
	}
	return res, err
}

// ErrDetached is what a stdin reader returns to detach: the stream ends
// at once, and the process goes on without this client (and, for a
// terminal, keeps its stdin for the next attach).
var ErrDetached = errors.New("detached")

// Resize sets the terminal size of a running container created with Tty.
func (c *Client) Resize(ctx context.Context, ref string, size api.ConsoleSize) error {
	b, _ := json.Marshal(size)
	resp, err := c.do(ctx, "POST", "/containers/"+url.PathEscape(ref)+"/resize", nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Stats samples a running container's resource usage.
func (c *Client) Stats(ctx context.Context, ref string) (api.ContainerStats, error) {
	var out api.ContainerStats
	return out, c.doJSON(ctx, "GET", "/containers/"+url.PathEscape(ref)+"/stats", nil, nil, &out)
}

// Top lists the processes of a running container.
func (c *Client) Top(ctx context.Context, ref string) (api.ContainerTop, error) {
	var out api.ContainerTop
	return out, c.doJSON(ctx, "GET", "/containers/"+url.PathEscape(ref)+"/top", nil, nil, &out)
}
