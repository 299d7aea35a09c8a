// Package daemon is skiff's composition root: it turns a Config into the
// running platform — state directory lock, state store, image store,
// runtime, container manager and API server — and takes it down again.
// It holds no globals; several daemons with different roots and sockets
// run side by side in one process or on one host.
//
// On SIGHUP a daemon hands itself over to the binary at its path without
// dropping a request (upgrade.go): the listening sockets pass to the new
// process, the state directory passes once the new process runs, and the
// old process drains and exits. It also takes its API and ingress sockets
// from systemd (LISTEN_FDS) when started by socket activation.
package daemon
