package client

import (
	"context"
	"net/url"

	"skiff.dev/skiff/api"
)

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, req api.NetworkCreateRequest) (api.Network, error) {
	var out api.Network
	return out, c.doJSON(ctx, "POST", "/networks", nil, req, &out)
}

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]api.Network, error) {
	var out []api.Network
	return out, c.doJSON(ctx, "GET", "/networks", nil, nil, &out)
}

// Network inspects one network by name, ID or ID prefix.
func (c *Client) Network(ctx context.Context, name string) (api.Network, error) {
	var out api.Network
	return out, c.doJSON(ctx, "GET", "/networks/"+url.PathEscape(name), nil, nil, &out)
}

// RemoveNetwork removes a network; one with containers attached is a
// conflict.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.doJSON(ctx, "DELETE", "/networks/"+url.PathEscape(name), nil, nil, nil)
}

// ConnectNetwork joins a container to one more network (at once if it
// runs), with extra DNS aliases there.
func (c *Client) ConnectNetwork(ctx context.Context, network string, req api.NetworkConnectRequest) error {
	return c.doJSON(ctx, "POST", "/networks/"+url.PathEscape(network)+"/connect", nil, req, nil)
}

// DisconnectNetwork takes a container off one of its further networks.
func (c *Client) DisconnectNetwork(ctx context.Context, network string, req api.NetworkDisconnectRequest) error {
	return c.doJSON(ctx, "POST", "/networks/"+url.PathEscape(network)+"/disconnect", nil, req, nil)
}
