package client

import (
	"context"
	"net/url"

	"skiff.dev/skiff/api"
)

// CreateVolume creates a named volume; an existing one is returned as is.
func (c *Client) CreateVolume(ctx context.Context, req api.VolumeCreateRequest) (api.Volume, error) {
	var out api.Volume
	return out, c.doJSON(ctx, "POST", "/volumes", nil, req, &out)
}

// Volumes lists the named volumes.
func (c *Client) Volumes(ctx context.Context) ([]api.Volume, error) {
	var out []api.Volume
	return out, c.doJSON(ctx, "GET", "/volumes", nil, nil, &out)
}

// Volume inspects one named volume.
func (c *Client) Volume(ctx context.Context, name string) (api.Volume, error) {
	var out api.Volume
	return out, c.doJSON(ctx, "GET", "/volumes/"+url.PathEscape(name), nil, nil, &out)
}

// RemoveVolume removes a named volume and its data; one that a container
// uses (running or not) is a conflict.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	return c.doJSON(ctx, "DELETE", "/volumes/"+url.PathEscape(name), nil, nil, nil)
}

// PruneVolumes removes the volumes no container uses.
func (c *Client) PruneVolumes(ctx context.Context) (api.VolumePruneResponse, error) {
	var out api.VolumePruneResponse
	return out, c.doJSON(ctx, "POST", "/volumes/prune", nil, nil, &out)
}
