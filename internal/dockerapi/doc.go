// Package dockerapi serves the Docker Engine API (versions 1.24 to 1.51)
// over skiff's own services, so the docker CLI, docker-compose,
// Testcontainers and Dev Containers work against skiff: a container made
// through one API is seen through the other.
//
// Requests and answers use the typed structs of github.com/moby/moby/api.
// Errors are Docker's {"message": "..."} bodies with the status of their
// category (errdefs): 400 invalid, 404 not found, 409 conflict, 501 for
// what skiff does not serve. Each file registers its own endpoints with
// addRoutes from an init function; docs/docker-api.md lists them.
package dockerapi
