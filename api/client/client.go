// Package client is the Go client of skiff's REST API. The skiff CLI uses
// it for everything; other programs can too:
//
//	c := client.New("/run/skiff/skiff.sock")
//	ctr, err := c.CreateContainer(ctx, api.ContainerCreateRequest{...})
//
// Errors returned for non-2xx responses are *Error values that keep the
// daemon's message and satisfy errors.Is with the matching errdefs
// category.
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
	"os"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/skiff/skiff.sock"

// Client talks to one skiff daemon.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client for the daemon listening on the unix socket path.
func New(socket string) *Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}
	return &Client{
		socket: socket,
		hc: &http.Client{Transport: &http.Transport{
			DialContext:         dial,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}},
	}
}

// Error is a non-2xx answer of the daemon.
type Error struct {
	Status int
	API    api.Error
}

func (e *Error) Error() string { return e.API.Message }

// Is makes errors.Is(err, errdefs.ErrNotFound) and friends work.
func (e *Error) Is(target error) bool {
	switch e.API.Kind {
	case "invalid":
		return target == errdefs.ErrInvalid
	case "not_found":
		return target == errdefs.ErrNotFound
	case "conflict":
		return target == errdefs.ErrConflict
	case "unavailable":
		return target == errdefs.ErrUnavailable
	case "unauthorized":
		return target == errdefs.ErrUnauthorized
	case "not_implemented":
		return target == errdefs.ErrNotImplemented
	}
	return false
}

func (c *Client) url(path string, q url.Values) string {
	u := "http://skiff/" + api.Version + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends a request and returns the response for 2xx statuses; other
// statuses become *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connError(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

func (c *Client) connError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		if _, serr := os.Stat(c.socket); serr != nil {
			return errdefs.Unavailable("cannot reach the skiff daemon: no socket at %s: start it with \"skiff daemon\" (or point --socket / SKIFF_SOCKET at its socket)", c.socket)
		}
		return errdefs.Unavailable("cannot reach the skiff daemon at %s: %v: is \"skiff daemon\" running, and may you use its socket?", c.socket, op.Err)
	}
	return errdefs.WithCategory(errdefs.ErrUnavailable, err)
}

func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &Error{Status: resp.StatusCode}
	if err := json.Unmarshal(data, &e.API); err != nil || e.API.Message == "" {
		e.API.Message = fmt.Sprintf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(data)))
		e.API.Kind = "internal"
	}
	return e
}

func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode daemon answer: %w", err)
	}
	return nil
}

// Ping checks that the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://skiff/_ping", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.connError(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return errdefs.Unavailable("daemon ping answered %s", resp.Status)
	}
	return nil
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (api.VersionInfo, error) {
	var v api.VersionInfo
	return v, c.doJSON(ctx, "GET", "/version", nil, nil, &v)
}

// Info returns facts about the daemon and its host.
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var v api.Info
	return v, c.doJSON(ctx, "GET", "/info", nil, nil, &v)
}

// readLines calls fn with each JSON line of r.
func readLines(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}
