package api

import (
	"net/netip"
	"regexp"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// HostGateway, as the address of an extra host ("NAME:host-gateway"),
// stands for the gateway of the container's network (docker's value).
const HostGateway = "host-gateway"

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9_]([-A-Za-z0-9_.]*[A-Za-z0-9_])?$`)

// ParseExtraHost splits an extra hosts entry "NAME:IP" (IPv6 addresses
// may be bracketed, "NAME:[::1]") into its name and address; the address
// is an IP address or HostGateway.
func ParseExtraHost(s string) (name, ip string, err error) {
	name, ip, ok := strings.Cut(s, ":")
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if !ok || len(name) > 253 || !hostNameRE.MatchString(name) {
		return "", "", errdefs.Invalid("invalid extra host %q: use NAME:IP, such as db.internal:10.1.2.3 or gw:host-gateway", s)
	}
	if ip == HostGateway {
		return name, ip, nil
	}
	addr, perr := netip.ParseAddr(ip)
	if perr != nil || addr.Zone() != "" {
		return "", "", errdefs.Invalid("invalid extra host %q: %q is not an IP address; use NAME:IP, such as db.internal:10.1.2.3 or gw:host-gateway", s, ip)
	}
	return name, addr.String(), nil
}

// CheckHostsDNS says whether a container's extra hosts and resolver
// settings (ExtraHosts, DNS, DNSSearch, DNSOptions) are well formed.
func CheckHostsDNS(c *ContainerConfig) error {
	for _, h := range c.ExtraHosts {
		if _, _, err := ParseExtraHost(h); err != nil {
			return err
		}
	}
	for _, s := range c.DNS {
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			return errdefs.Invalid("invalid DNS server %q: use an IP address, such as 9.9.9.9", s)
		}
	}
	for _, d := range c.DNSSearch {
		if d != "." && (len(d) > 253 || !hostNameRE.MatchString(strings.TrimSuffix(d, "."))) {
			return errdefs.Invalid("invalid DNS search domain %q: use a domain name, such as example.com", d)
		}
	}
	for _, o := range c.DNSOptions {
		if o == "" || strings.ContainsAny(o, " \t\r\n#;") {
			return errdefs.Invalid("invalid DNS option %q: use one resolv.conf option without spaces, such as ndots:2 or edns0", o)
		}
	}
	return nil
}
