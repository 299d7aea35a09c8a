package api

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestParseExtraHost(t *testing.T) {
	for in, want := range map[string][2]string{
		"db.internal:10.1.2.3": {"db.internal", "10.1.2.3"},
		"gw:host-gateway":      {"gw", HostGateway},
		"v6:::1":               {"v6", "::1"},
		"v6b:[fd00::1]":        {"v6b", "fd00::1"},
	} {
		name, ip, err := ParseExtraHost(in)
		if err != nil || name != want[0] || ip != want[1] {
			t.Errorf("ParseExtraHost(%q) = %q, %q, %v; want %q, %q", in, name, ip, err, want[0], want[1])
		}
	}
}

func TestCheckHostsDNS(t *testing.T) {
	good := ContainerConfig{ExtraHosts: []string{"a:10.0.0.1", "gw:host-gateway"}, DNS: []string{"9.9.9.9", "2620:fe::fe"},
		DNSSearch: []string{"example.com", "corp.example."}, DNSOptions: []string{"ndots:2", "edns0"}}
	if err := CheckHostsDNS(&good); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	if err := CheckHostsDNS(&ContainerConfig{DNSSearch: []string{"."}}); err != nil {
		t.Errorf(`--dns-search "." refused: %v`, err)
	}
	for _, tc := range []struct {
		c    ContainerConfig
		want string
	}{
		{ContainerConfig{ExtraHosts: []string{"db.internal"}}, `invalid extra host "db.internal": use NAME:IP`},
		{ContainerConfig{ExtraHosts: []string{"db:10.1.2"}}, `"10.1.2" is not an IP address`},
		{ContainerConfig{ExtraHosts: []string{"bad name:10.1.2.3"}}, `invalid extra host "bad name:10.1.2.3"`},
		{ContainerConfig{ExtraHosts: []string{":10.1.2.3"}}, `invalid extra host ":10.1.2.3"`},
		{ContainerConfig{DNS: []string{"dns.example"}}, `invalid DNS server "dns.example": use an IP address`},
		{ContainerConfig{DNSSearch: []string{"a b"}}, `invalid DNS search domain "a b": use a domain name`},
		{ContainerConfig{DNSOptions: []string{"ndots:2 edns0"}}, `invalid DNS option "ndots:2 edns0"`},
		{ContainerConfig{DNSOptions: []string{""}}, `invalid DNS option ""`},
	} {
		err := CheckHostsDNS(&tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%+v: got %v, want an invalid-input error with %q", tc.c, err, tc.want)
		}
	}
}
