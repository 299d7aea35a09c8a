package daemon

import "testing"

func TestLocalName(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "shop.localhost": true, "SHOP.LOCALHOST.": true, "printer.local": true,
		"db.internal": true, "nas.home.arpa": true, "127.0.0.1": true, "::1": true, "intranet": true,
		"shop.example.com": false, "example.test": false, "a.b.c.io": false,
	} {
		if got := localName(host); got != want {
			t.Errorf("localName(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestACMEConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		c       ACMEConfig
		tlsAddr string
		ok      bool
	}{
		{ACMEConfig{}, "", true},
		{ACMEConfig{CA: "https://acme.example/dir"}, "127.0.0.1:8443", true},
		{ACMEConfig{CA: "https://acme.example/dir"}, "", false},
		{ACMEConfig{CA: "http://acme.example/dir"}, "127.0.0.1:8443", false},
		{ACMEConfig{Email: "a@b.c"}, "127.0.0.1:8443", false},
		{ACMEConfig{CA: "https://acme.example/dir", CARoot: "/nonexistent"}, "127.0.0.1:8443", false},
	} {
		if err := tc.c.check(tc.tlsAddr); (err == nil) != tc.ok {
			t.Errorf("%+v with %q: err %v, want ok=%v", tc.c, tc.tlsAddr, err, tc.ok)
		}
	}
}
