package client

import (
	"context"
	"net/url"

	"skiff.dev/skiff/api"
)

// CreateToken makes an API token; the answer holds its secret, shown
// this once. Served on the unix socket only.
func (c *Client) CreateToken(ctx context.Context, req api.TokenCreateRequest) (api.TokenCreateResponse, error) {
	var out api.TokenCreateResponse
	return out, c.doJSON(ctx, "POST", "/tokens", nil, req, &out)
}

// Tokens lists the API tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]api.Token, error) {
	var out []api.Token
	return out, c.doJSON(ctx, "GET", "/tokens", nil, nil, &out)
}

// RevokeToken deletes the token named name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.doJSON(ctx, "DELETE", "/tokens/"+url.PathEscape(name), nil, nil, nil)
}
