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
	"crypto/tls"
	"crypto/x509"
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
	// For a daemon over TCP (NewRemote): its base URL, the bearer token
	// and the TLS configuration; base is "" for the unix socket.
	base  string
	token string
	tls   *tls.Config
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

// NewRemote returns a client for a daemon serving its API over TCP
// (skiff daemon --api-addr): host is https://HOST:PORT, token a bearer
// token (skiff token create), caFile the PEM file of the CA to trust
// ("" for the system's roots; skiff's local CA is ROOT/ca/ca.crt on the
// daemon's host).
func NewRemote(host, token, caFile string) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, errdefs.Invalid("--host %q must be https://HOST:PORT (the daemon's --api-addr; the API over TCP is always TLS)", host)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, errdefs.Invalid("read the CA file --ca %s: %v", caFile, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errdefs.Invalid("--ca %s holds no PEM certificate", caFile)
		}
	}
	return &Client{
		base: "https://" + u.Host, token: token, tls: tc,
		hc: &http.Client{Transport: &http.Transport{
			TLSClientConfig:     tc,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}},
	}, nil
}

// dial opens a fresh connection to the daemon (for upgraded streams).
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if c.base == "" {
		var d net.Dialer
		return d.DialContext(ctx, "unix", c.socket)
	}
	d := tls.Dialer{Config: c.tls}
	return d.DialContext(ctx, "tcp", strings.TrimPrefix(c.base, "https://"))
}

// authorize adds the bearer token to req, if there is one.
func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
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
	case "unauthorized", "forbidden":
		return target == errdefs.ErrUnauthorized
	case "not_implemented":
		return target == errdefs.ErrNotImplemented
	}
	return false
}

func (c *Client) url(path string, q url.Values) string {
	base := c.base
	if base == "" {
		base = "http://skiff"
	}
	u := base + "/" + api.Version + path
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
	c.authorize(req)
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
	if c.base != "" {
		var uae x509.UnknownAuthorityError
		var hne x509.HostnameError
		var cve *tls.CertificateVerificationError
		switch {
		case errors.As(err, &uae), errors.As(err, &cve) && errors.As(cve.Err, &uae):
			return errdefs.Unavailable("cannot trust the daemon at %s: its certificate is not signed by a CA you trust: give its CA with --ca or SKIFF_CA (skiff's local CA is ROOT/ca/ca.crt on the daemon's host)", c.base)
		case errors.As(err, &hne):
			return errdefs.Unavailable("cannot trust the daemon at %s: its certificate does not name that host: %v", c.base, hne)
		}
		return errdefs.Unavailable("cannot reach the skiff daemon at %s: %v", c.base, err)
	}
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
	base := c.base
	if base == "" {
		base = "http://skiff"
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/_ping", nil)
	c.authorize(req)
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
