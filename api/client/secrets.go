package client

import (
	"context"
	"net/url"

	"skiff.dev/skiff/api"
)

// CreateSecret creates secret name at version 1 with data.
func (c *Client) CreateSecret(ctx context.Context, name string, data map[string][]byte) (api.Secret, error) {
	var out api.Secret
	return out, c.doJSON(ctx, "POST", "/secrets", nil, api.SecretWriteRequest{Name: name, Data: data}, &out)
}

// SetSecret writes data as the next version of secret name; the Apps
// using it roll out a new revision.
func (c *Client) SetSecret(ctx context.Context, name string, data map[string][]byte) (api.Secret, error) {
	var out api.Secret
	return out, c.doJSON(ctx, "PUT", "/secrets/"+url.PathEscape(name), nil, api.SecretWriteRequest{Data: data}, &out)
}

// Secrets lists the secrets (keys and versions, no values).
func (c *Client) Secrets(ctx context.Context) ([]api.Secret, error) {
	var out []api.Secret
	return out, c.doJSON(ctx, "GET", "/secrets", nil, nil, &out)
}

// Secret inspects one secret: keys, versions and the Apps using it.
func (c *Client) Secret(ctx context.Context, name string) (api.Secret, error) {
	var out api.Secret
	return out, c.doJSON(ctx, "GET", "/secrets/"+url.PathEscape(name), nil, nil, &out)
}

// RevealSecret returns the values of a secret's current version.
func (c *Client) RevealSecret(ctx context.Context, name string) (api.SecretValues, error) {
	var out api.SecretValues
	return out, c.doJSON(ctx, "GET", "/secrets/"+url.PathEscape(name), url.Values{"reveal": {"true"}}, nil, &out)
}

// RemoveSecret removes a secret; one an App uses is a conflict.
func (c *Client) RemoveSecret(ctx context.Context, name string) error {
	return c.doJSON(ctx, "DELETE", "/secrets/"+url.PathEscape(name), nil, nil, nil)
}

// RotateSecretsKey has the daemon replace its secrets key file with a new
// one; the old key file no longer opens the secrets.
func (c *Client) RotateSecretsKey(ctx context.Context) error {
	return c.doJSON(ctx, "POST", "/secrets/rotate-key", nil, nil, nil)
}
