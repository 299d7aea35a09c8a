package client

import (
	"context"
	"net/url"

	"skiff.dev/skiff/api"
)

// AddSource adds a GitOps source (name and spec); its first sync starts
// at once.
func (c *Client) AddSource(ctx context.Context, s api.Source) (api.Source, error) {
	var out api.Source
	return out, c.doJSON(ctx, "POST", "/sources", nil, s, &out)
}

// Sources lists the sources with their status.
func (c *Client) Sources(ctx context.Context) ([]api.Source, error) {
	var out []api.Source
	return out, c.doJSON(ctx, "GET", "/sources", nil, nil, &out)
}

// Source returns one source with the health of each App it applied.
func (c *Client) Source(ctx context.Context, name string) (api.Source, error) {
	var out api.Source
	return out, c.doJSON(ctx, "GET", "/sources/"+url.PathEscape(name), nil, nil, &out)
}

// RemoveSource removes a source; the Apps it applied keep running.
func (c *Client) RemoveSource(ctx context.Context, name string) error {
	return c.doJSON(ctx, "DELETE", "/sources/"+url.PathEscape(name), nil, nil, nil)
}

// SyncSource syncs a source now and returns it once the sync ended; a
// failed sync is reported in its status (LastResult, LastError).
func (c *Client) SyncSource(ctx context.Context, name string) (api.Source, error) {
	var out api.Source
	return out, c.doJSON(ctx, "POST", "/sources/"+url.PathEscape(name)+"/sync", nil, nil, &out)
}

// SuspendSource stops a source applying: its syncs only report drift.
func (c *Client) SuspendSource(ctx context.Context, name string) (api.Source, error) {
	var out api.Source
	return out, c.doJSON(ctx, "POST", "/sources/"+url.PathEscape(name)+"/suspend", nil, nil, &out)
}

// ResumeSource has a suspended source apply again, syncing at once.
func (c *Client) ResumeSource(ctx context.Context, name string) (api.Source, error) {
	var out api.Source
	return out, c.doJSON(ctx, "POST", "/sources/"+url.PathEscape(name)+"/resume", nil, nil, &out)
}

// SourceHistory returns a source's syncs that changed something or
// failed, newest first.
func (c *Client) SourceHistory(ctx context.Context, name string) ([]api.SourceHistoryEntry, error) {
	var out []api.SourceHistoryEntry
	return out, c.doJSON(ctx, "GET", "/sources/"+url.PathEscape(name)+"/history", nil, nil, &out)
}

// DiffSource returns what a sync of the source would do now, with each
// App's diff; it changes nothing.
func (c *Client) DiffSource(ctx context.Context, name string) (api.SourceDiff, error) {
	var out api.SourceDiff
	return out, c.doJSON(ctx, "GET", "/sources/"+url.PathEscape(name)+"/diff", nil, nil, &out)
}
