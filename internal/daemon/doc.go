// Package daemon is skiff's composition root: it turns a Config into the
// running platform — state directory lock, state store, image store,
// runtime, container manager and API server — and takes it down again.
// It holds no globals; several daemons with different roots and sockets
// run side by side in one process or on one host.
package daemon
