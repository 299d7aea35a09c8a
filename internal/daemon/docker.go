package daemon

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/dockerapi"
)

// sockDocker names the Docker API socket among the daemon's sockets.
const sockDocker = "docker"

// listenDocker opens (or takes over) the Docker API socket, if
// configured: mode 0660, owned by root and the SocketGroup group like
// the API socket.
func (d *Daemon) listenDocker() (err error) {
	path := d.cfg.DockerSocket
	if path == "" {
		return nil
	}
	d.dockerLn, err = d.socks.listener(sockDocker, func() (net.Listener, error) { return listen(path, SocketGroup) })
	return err
}

// serveDocker serves the Docker Engine API on its socket over the same
// services as the skiff API: containers through the admission policy.
func (d *Daemon) serveDocker(ctrs apiserver.Containers, images apiserver.Images) error {
	if d.cfg.DockerSocket == "" {
		return nil
	}
	if d.dockerLn == nil {
		l, err := d.socks.listener(sockDocker, nil)
		if err != nil {
			return err
		}
		d.dockerLn = l
	}
	handler := dockerapi.New(dockerapi.Services{
		System: &system{d: d}, Containers: ctrs, Hub: d.dockerEvents, Images: images, Networks: d.networks, Connector: d.ctrs, Volumes: d.ctrs,
		ImageSource: d.images, MaxUpload: d.cfg.MaxImageSize,
	}, d.log.With("component", "docker-api"))
	d.dockerSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	go func(srv *http.Server, l net.Listener) {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			d.log.Error("the Docker API stopped", "err", err)
		}
	}(d.dockerSrv, d.dockerLn)
	d.dockerLn = nil
	d.log.Info("serving the Docker API", "socket", d.cfg.DockerSocket)
	return nil
}

// newDockerEvents returns the hub of the Docker API's events when the
// API is served, nil (which ignores changes) otherwise.
func newDockerEvents(cfg Config) *dockerapi.EventHub {
	if cfg.DockerSocket == "" {
		return nil
	}
	return dockerapi.NewEventHub()
}

// checkDockerSocket makes DockerSocket absolute and keeps it apart from
// the API socket.
func (c *Config) checkDockerSocket() error {
	if c.DockerSocket == "" {
		return nil
	}
	p, err := filepath.Abs(c.DockerSocket)
	if err != nil {
		return err
	}
	c.DockerSocket = p
	if p == c.Socket {
		return errInvalidDockerSocket(p)
	}
	return nil
}

// removeDockerSocket removes the Docker API socket file on a plain stop.
func (d *Daemon) removeDockerSocket() {
	if d.cfg.DockerSocket != "" && d.socks != nil && d.socks.has(sockDocker) && !d.socks.systemd {
		os.Remove(d.cfg.DockerSocket)
	}
}

func errInvalidDockerSocket(p string) error {
	return errdefs.Invalid("--docker-socket %s is the API socket (--socket): give the Docker API a socket of its own, e.g. /run/skiff/docker.sock", p)
}
