package network

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		want api.PortMapping
		err  string
	}{
		{"80", api.PortMapping{ContainerPort: 80, Protocol: "tcp"}, ""},
		{"8080:80", api.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, ""},
		{"127.0.0.1:8080:80", api.PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, ""},
		{"0.0.0.0:8080:80/udp", api.PortMapping{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Protocol: "udp"}, ""},
		{"127.0.0.1::80", api.PortMapping{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}, ""},
		{"0:80", api.PortMapping{ContainerPort: 80, Protocol: "tcp"}, ""},
		{"53/udp", api.PortMapping{ContainerPort: 53, Protocol: "udp"}, ""},
		{"65535:65535/tcp", api.PortMapping{HostPort: 65535, ContainerPort: 65535, Protocol: "tcp"}, ""},
		{"", api.PortMapping{}, "container port: missing"},
		{"8080:", api.PortMapping{}, "container port: missing"},
		{"0", api.PortMapping{}, "not between 1 and 65535"},
		{"65536", api.PortMapping{}, "not between 1 and 65535"},
		{"80:65536", api.PortMapping{}, "not between 1 and 65535"},
		{"http", api.PortMapping{}, "not a number"},
		{"+80", api.PortMapping{}, "not a number"},
		{"80/sctp", api.PortMapping{}, `protocol "sctp"`},
		{"80/", api.PortMapping{}, `protocol ""`},
		{"8000-8010:80", api.PortMapping{}, "ranges are not supported"},
		{"localhost:8080:80", api.PortMapping{}, "not an IPv4 address"},
		{"300.1.1.1:8080:80", api.PortMapping{}, "not an IPv4 address"},
		{"[::1]:8080:80", api.PortMapping{}, "IPv6"},
		{"::1:8080:80", api.PortMapping{}, "IPv6"},
		{":8080:80", api.PortMapping{}, "host IP before the first colon is empty"},
		{"1:2:3:4", api.PortMapping{}, "IPv6"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := api.ParsePort(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("ParsePort(%q) = %+v, %v; want an invalid-argument error saying %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePort(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestFormatPort(t *testing.T) {
	tests := []struct {
		in   api.PortMapping
		want string
	}{
		{api.PortMapping{HostPort: 8080, ContainerPort: 80}, "127.0.0.1:8080->80/tcp"},
		{api.PortMapping{HostIP: "0.0.0.0", HostPort: 53, ContainerPort: 53, Protocol: "udp"}, "0.0.0.0:53->53/udp"},
	}
	for _, tc := range tests {
		if got := api.FormatPort(tc.in); got != tc.want {
			t.Errorf("FormatPort(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// spec renders a mapping back into -p syntax.
func spec(p api.PortMapping) string {
	s := fmt.Sprint(p.ContainerPort)
	if p.HostIP != "" {
		s = fmt.Sprintf("%s:%d:%s", p.HostIP, p.HostPort, s)
	} else if p.HostPort != 0 {
		s = fmt.Sprintf("%d:%s", p.HostPort, s)
	}
	return s + "/" + p.Protocol
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1:8080:80/udp", "0.0.0.0::80", "80/tcp", "[::1]:1:2", "1-2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := api.ParsePort(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ParsePort(%q): error %v is not ErrInvalid", s, err)
			}
			return
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 || (p.Protocol != "tcp" && p.Protocol != "udp") {
			t.Fatalf("ParsePort(%q) = %+v: out of range", s, p)
		}
		again, err := api.ParsePort(spec(p))
		if err != nil || again != p {
			t.Fatalf("ParsePort(%q) = %+v, but its rendering %q parses to %+v, %v", s, p, spec(p), again, err)
		}
		if _, err := normalizePorts([]api.PortMapping{p}); err != nil {
			t.Fatalf("ParsePort(%q) = %+v, which Setup refuses: %v", s, p, err)
		}
	})
}
