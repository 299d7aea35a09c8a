// Package api holds skiff's wire types: the JSON bodies of the REST API
// served under /v1 by `skiff daemon`. Field names are part of the public
// contract; add fields, never rename or remove them.
package api

// Version is the API path prefix this package describes.
const Version = "v1"
