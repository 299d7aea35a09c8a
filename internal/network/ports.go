package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/errdefs"
)

// DefaultHostIP is the host address a port is published on when the
// mapping names none: loopback only, so publishing never exposes a
// container to the network by accident. See docs/networking.md.
const DefaultHostIP = "127.0.0.1"

// ParsePort parses docker's -p syntax "[IP:][HOST:]CONTAINER[/PROTO]":
// "80" (a free host port), "8080:80", "127.0.0.1:8080:80",
// "0.0.0.0::80" (a free port on every address), with "/tcp" (the
// default) or "/udp". The host IP stays empty when not given; Setup
// then uses DefaultHostIP.
func ParsePort(s string) (api.PortMapping, error) {
	var p api.PortMapping
	bad := func(format string, args ...any) (api.PortMapping, error) {
		return api.PortMapping{}, errdefs.Invalid("invalid port mapping %q: %s: use [IP:][HOST:]CONTAINER[/tcp|udp], like 8080:80 or 127.0.0.1:8080:80/udp", s, fmt.Sprintf(format, args...))
	}
	rest, proto, hasProto := strings.Cut(s, "/")
	p.Protocol = "tcp"
	if hasProto {
		switch proto {
		case "tcp", "udp":
			p.Protocol = proto
		default:
			return bad("protocol %q is not tcp or udp", proto)
		}
	}
	if strings.HasPrefix(rest, "[") || strings.Count(rest, ":") > 2 {
		return bad("IPv6 host addresses are not supported")
	}
	parts := strings.Split(rest, ":")
	var hostIP, hostPort, ctrPort string
	switch len(parts) {
	case 1:
		ctrPort = parts[0]
	case 2:
		hostPort, ctrPort = parts[0], parts[1]
	case 3:
		hostIP, hostPort, ctrPort = parts[0], parts[1], parts[2]
		if hostIP == "" {
			return bad("the host IP before the first colon is empty")
		}
	}
	if hostIP != "" {
		ip, err := netip.ParseAddr(hostIP)
		if err != nil || !ip.Is4() {
			return bad("host IP %q is not an IPv4 address", hostIP)
		}
		p.HostIP = ip.String()
	}
	var err error
	if p.ContainerPort, err = parsePortNumber(ctrPort, false); err != nil {
		return bad("container port: %v", err)
	}
	if hostPort != "" {
		if p.HostPort, err = parsePortNumber(hostPort, true); err != nil {
			return bad("host port: %v", err)
		}
	}
	return p, nil
}

func parsePortNumber(s string, zeroOK bool) (int, error) {
	if s == "" {
		return 0, errors.New("missing")
	}
	if strings.Contains(s, "-") {
		return 0, fmt.Errorf("%q: port ranges are not supported", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 || n == 0 && !zeroOK {
		return 0, fmt.Errorf("%q is not between 1 and 65535", s)
	}
	return n, nil
}

// FormatPort renders a published port the way docker ps does:
// "127.0.0.1:8080->80/tcp".
func FormatPort(p api.PortMapping) string {
	ip := p.HostIP
	if ip == "" {
		ip = DefaultHostIP
	}
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("%s:%d->%d/%s", ip, p.HostPort, p.ContainerPort, proto)
}

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
			p.HostIP = DefaultHostIP
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

// reservePort binds proto ip:port (port 0 picks a free one) and returns
// the reservation and the port.
func reservePort(proto string, ip netip.Addr, port int) (*reservation, int, error) {
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
