package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHooksOrGuard checks that only webhook calls skip the token guard
// of the API over TCP.
func TestHooksOrGuard(t *testing.T) {
	var hit string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = "api" })
	guard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = "guard" })
	h := hooksOrGuard(api, guard)
	tests := []struct {
		method, target, want string
	}{
		{"POST", "/hooks/sources/shop", "api"},
		{"GET", "/hooks/sources/shop", "guard"},
		{"POST", "/hooks/sources/", "guard"},
		{"POST", "/hooks/sources/shop/../../v1/containers", "guard"},
		{"POST", "/hooks/sources/a%2F..%2F..%2Fv1%2Fcontainers", "guard"},
		{"POST", "/hooks/sources/shop/x", "guard"},
		{"POST", "/v1/sources/shop/sync", "guard"},
		{"POST", "/v1/apps", "guard"},
	}
	for _, tc := range tests {
		hit = ""
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.target, nil))
		if hit != tc.want {
			t.Errorf("%s %s went to %s, want %s", tc.method, tc.target, hit, tc.want)
		}
	}
}
