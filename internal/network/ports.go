package network

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// normalizePorts validates mappings and fills in defaults; duplicates of
// one host address, port and protocol are invalid.
func normalizePorts(in []api.PortMapping) ([]api.PortMapping, error) {
	out := make([]api.PortMapping, 0, len(in))
	seen := map[string]bool{}
	for _, p := range in {
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, errdefs.Invalid("port mapping protocol %q is not tcp or udp", p.Protocol)
		}
		if p.HostIP == "" {
			p.HostIP = api.DefaultHostIP
		}
		ip, err := netip.ParseAddr(p.HostIP)
		if err != nil || !ip.Is4() {
			return nil, errdefs.Invalid("port mapping host IP %q is not an IPv4 address", p.HostIP)
		}
		p.HostIP = ip.String()
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return nil, errdefs.Invalid("container port %d is not between 1 and 65535", p.ContainerPort)
		}
		if p.HostPort < 0 || p.HostPort > 65535 {
			return nil, errdefs.Invalid("host port %d is not between 0 (pick a free one) and 65535", p.HostPort)
		}
		if p.HostPort != 0 {
			key := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
			if seen[key] {
				return nil, errdefs.Invalid("host port %s is published twice", key)
			}
			seen[key] = true
		}
		out = append(out, p)
	}
	return out, nil
}

// reservation holds a host port: a socket bound to it (never listening,
// without SO_REUSEADDR) so no other program can take the port while the
// DNAT rule sends its traffic to a container.
type reservation struct {
	fd int
}

// reservePort binds proto ip:port (port 0 picks a free one, see
// freePort) and returns the reservation and the port.
func reservePort(proto string, ip netip.Addr, port int) (*reservation, int, error) {
	if port == 0 {
		return freePort(proto, ip)
	}
	return bindPort(proto, ip, port)
}

// freePort reserves a free port above the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768-60999 by default), where the
// kernel never picks a port for another program's bind to port 0. A
// published port's DNAT rule outlives the daemon (containers stay
// reachable while it is down) but not its reservation: in the ephemeral
// range another program's listener could be given the port meanwhile
// and find its connections sent to the container. When nothing is free
// above the range (or the range ends at 65535), the kernel picks.
func freePort(proto string, ip netip.Addr) (*reservation, int, error) {
	lo := ephemeralEnd() + 1
	if n := 65536 - lo; lo > 1024 && n > 0 {
		start := rand.IntN(n)
		for i := range n {
			port := lo + (start+i)%n
			r, _, err := bindPort(proto, ip, port)
			if err == nil {
				return r, port, nil
			}
			if !errors.Is(err, errdefs.ErrConflict) {
				return nil, 0, err
			}
		}
	}
	return bindPort(proto, ip, 0)
}

// ephemeralEnd is the last port of the kernel's ephemeral range (65535
// when it cannot be read, so that the kernel picks).
func ephemeralEnd() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 65535
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 65535
	}
	end, err := strconv.Atoi(f[1])
	if err != nil || end < 1 || end > 65535 {
		return 65535
	}
	return end
}

// bindPort binds proto ip:port (0: the kernel picks).
func bindPort(proto string, ip netip.Addr, port int) (*reservation, int, error) {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, errdefs.Unavailable("reserve host port: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: ip.As4()}); err != nil {
		unix.Close(fd)
		where := fmt.Sprintf("%s:%d/%s", ip, port, proto)
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, 0, errdefs.Conflict("host port %s is already in use: choose another host port, or stop the program or container that uses it", where)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			return nil, 0, errdefs.Invalid("cannot publish on %s: %s is not an address of this host", where, ip)
		case errors.Is(err, syscall.EACCES):
			return nil, 0, errdefs.Invalid("cannot publish on %s: permission denied", where)
		}
		return nil, 0, errdefs.Unavailable("reserve host port %s: %v", where, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, 0, errdefs.Unavailable("reserve host port: %v", err)
	}
	return &reservation{fd: fd}, sa.(*unix.SockaddrInet4).Port, nil
}

// Close releases the port.
func (r *reservation) Close() error {
	if r == nil || r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}
