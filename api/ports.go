package api

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"skiff.dev/skiff/api/errdefs"
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
func ParsePort(s string) (PortMapping, error) {
	var p PortMapping
	bad := func(format string, args ...any) (PortMapping, error) {
		return PortMapping{}, errdefs.Invalid("invalid port mapping %q: %s: use [IP:][HOST:]CONTAINER[/tcp|udp], like 8080:80 or 127.0.0.1:8080:80/udp", s, fmt.Sprintf(format, args...))
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
func FormatPort(p PortMapping) string {
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
