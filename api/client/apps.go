package client

import (
	"context"
	"net/url"
	"strconv"

	"skiff.dev/skiff/api"
)

// ApplyApp creates or updates an App.
func (c *Client) ApplyApp(ctx context.Context, a api.App) (api.App, error) {
	var out api.App
	return out, c.doJSON(ctx, "POST", "/apps", nil, a, &out)
}

// Apps lists the Apps.
func (c *Client) Apps(ctx context.Context) ([]api.App, error) {
	var out []api.App
	return out, c.doJSON(ctx, "GET", "/apps", nil, nil, &out)
}

// App returns one App.
func (c *Client) App(ctx context.Context, name string) (api.App, error) {
	var out api.App
	return out, c.doJSON(ctx, "GET", "/apps/"+url.PathEscape(name), nil, nil, &out)
}

// DeleteApp deletes an App; its replicas drain and stop.
func (c *Client) DeleteApp(ctx context.Context, name string) error {
	return c.doJSON(ctx, "DELETE", "/apps/"+url.PathEscape(name), nil, nil, nil)
}

// Revisions lists an App's revisions.
func (c *Client) Revisions(ctx context.Context, app string) ([]api.Revision, error) {
	var out []api.Revision
	return out, c.doJSON(ctx, "GET", "/apps/"+url.PathEscape(app)+"/revisions", nil, nil, &out)
}

// Replicas lists the replicas of an App, or of all Apps when app is "".
func (c *Client) Replicas(ctx context.Context, app string) ([]api.Replica, error) {
	var out []api.Replica
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	return out, c.doJSON(ctx, "GET", "/replicas", q, nil, &out)
}

// SetTraffic replaces an App's traffic split.
func (c *Client) SetTraffic(ctx context.Context, app string, t []api.TrafficTarget) (api.App, error) {
	var out api.App
	return out, c.doJSON(ctx, "PUT", "/apps/"+url.PathEscape(app)+"/traffic", nil, t, &out)
}

// Rollback sends an App's traffic to an older revision ("" = the
// previous ready one).
func (c *Client) Rollback(ctx context.Context, app, to string) (api.App, error) {
	var out api.App
	q := url.Values{}
	if to != "" {
		q.Set("to", to)
	}
	return out, c.doJSON(ctx, "POST", "/apps/"+url.PathEscape(app)+"/rollback", q, nil, &out)
}

// ScaleApp changes an App's replica bounds; nil leaves one unchanged.
func (c *Client) ScaleApp(ctx context.Context, app string, min, max *int) (api.App, error) {
	var out api.App
	body := map[string]*int{}
	if min != nil {
		body["min"] = min
	}
	if max != nil {
		body["max"] = max
	}
	return out, c.doJSON(ctx, "POST", "/apps/"+url.PathEscape(app)+"/scale", nil, body, &out)
}

// EventsOptions select events.
type EventsOptions struct {
	Kind, Name string
	Since      string
	Limit      int
}

// Events lists recorded events, oldest first.
func (c *Client) Events(ctx context.Context, o EventsOptions) ([]api.Event, error) {
	q := url.Values{}
	if o.Kind != "" {
		q.Set("kind", o.Kind)
	}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out []api.Event
	return out, c.doJSON(ctx, "GET", "/events", q, nil, &out)
}
