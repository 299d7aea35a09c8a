package apiauth

import (
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func TestSecretHashAndMatch(t *testing.T) {
	s1, h1 := NewSecret()
	s2, h2 := NewSecret()
	if s1 == s2 || h1 == h2 {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(s1, SecretPrefix) || len(s1) != len(SecretPrefix)+43 {
		t.Fatalf("secret %q: want %s and 43 base64 characters (32 bytes)", s1, SecretPrefix)
	}
	if strings.Contains(h1, strings.TrimPrefix(s1, SecretPrefix)) || len(h1) != 64 {
		t.Fatalf("hash %q is not a SHA-256 in hex", h1)
	}
	if !Matches(h1, s1) || Matches(h1, s2) || Matches(h1, s1+"x") || Matches(h1, "") || Matches("", s1) {
		t.Fatal("Matches disagrees with the hash")
	}
}

func TestRoleMatrix(t *testing.T) {
	viewer := api.Token{Name: "v", Role: api.RoleViewer}
	deployer := api.Token{Name: "d", Role: api.RoleDeployer, App: "app-*"}
	admin := api.Token{Name: "a", Role: api.RoleAdmin}
	calls := []struct {
		name                    string
		call                    Call
		viewer, deployer, admin bool
	}{
		{"list containers", Call{Method: "GET", Path: "/v1/containers"}, true, true, true},
		{"get app", Call{Method: "GET", Path: "/v1/apps/app-a"}, true, true, true},
		{"events", Call{Method: "GET", Path: "/v1/events"}, true, true, true},
		{"apply matching", Call{Method: "POST", Path: "/v1/apps", App: "app-a"}, false, true, true},
		{"apply other", Call{Method: "POST", Path: "/v1/apps", App: "other"}, false, false, true},
		{"apply nameless", Call{Method: "POST", Path: "/v1/apps"}, false, false, true},
		{"delete matching", Call{Method: "DELETE", Path: "/v1/apps/app-a"}, false, true, true},
		{"delete other", Call{Method: "DELETE", Path: "/v1/apps/b"}, false, false, true},
		{"rollback", Call{Method: "POST", Path: "/v1/apps/app-a/rollback"}, false, true, true},
		{"scale", Call{Method: "POST", Path: "/v1/apps/app-a/scale"}, false, true, true},
		{"traffic", Call{Method: "PUT", Path: "/v1/apps/app-a/traffic"}, false, false, true},
		{"run container", Call{Method: "POST", Path: "/v1/containers"}, false, false, true},
		{"exec", Call{Method: "POST", Path: "/v1/containers/x/exec"}, false, false, true},
		{"pull", Call{Method: "POST", Path: "/v1/images/pull"}, false, false, true},
		{"network create", Call{Method: "POST", Path: "/v1/networks"}, false, false, true},
		{"secret inspect", Call{Method: "GET", Path: "/v1/secrets/db"}, true, true, true},
		{"secret reveal", Call{Method: "GET", Path: "/v1/secrets/db", Reveal: true}, false, false, true},
		{"token list", Call{Method: "GET", Path: "/v1/tokens"}, false, false, false},
		{"token create", Call{Method: "POST", Path: "/v1/tokens"}, false, false, false},
		{"token revoke", Call{Method: "DELETE", Path: "/v1/tokens/a"}, false, false, false},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			for _, tc := range []struct {
				tok  api.Token
				want bool
			}{{viewer, c.viewer}, {deployer, c.deployer}, {admin, c.admin}} {
				reason := Allow(tc.tok, c.call)
				if (reason == "") != tc.want {
					t.Errorf("%s: allowed=%v (%q), want %v", tc.tok.Role, reason == "", reason, tc.want)
				}
				if reason != "" && !strings.Contains(c.call.Path, "/v1/tokens") && !strings.Contains(reason, "role "+tc.tok.Role) {
					t.Errorf("%s: refusal %q does not name the role", tc.tok.Role, reason)
				}
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		req  api.TokenCreateRequest
		want string
	}{
		{api.TokenCreateRequest{Role: "root"}, "is not a role"},
		{api.TokenCreateRequest{Role: "deployer"}, "needs --app"},
		{api.TokenCreateRequest{Role: "deployer", App: "[a"}, "not a valid pattern"},
		{api.TokenCreateRequest{Role: "viewer", App: "a"}, "deployer tokens only"},
		{api.TokenCreateRequest{Role: "viewer", Expires: "-1h"}, "positive duration"},
		{api.TokenCreateRequest{Role: "viewer", Name: "a b"}, "token name"},
	} {
		if _, err := CheckRequest(c.req, now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	exp, err := CheckRequest(api.TokenCreateRequest{Role: "deployer", App: "shop-*", Expires: "2h"}, now)
	if err != nil || exp == nil || !exp.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("expiry %v, %v", exp, err)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(3, time.Minute)
	l.Now = func() time.Time { return now }
	for i := range 3 {
		if _, blocked := l.Blocked("a"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		if got := l.Fail("a"); got != (i == 2) {
			t.Fatalf("failure %d: Fail reported blocking=%v", i+1, got)
		}
		now = now.Add(10 * time.Second)
	}
	wait, blocked := l.Blocked("a")
	if !blocked || wait != 30*time.Second {
		t.Fatalf("after 3 failures: blocked=%v wait=%v, want 30s", blocked, wait)
	}
	if l.Fail("b") {
		t.Fatal("one failure blocks")
	}
	if _, blocked := l.Blocked("b"); blocked {
		t.Fatal("another address is blocked")
	}
	now = now.Add(30 * time.Second) // the first failure is a minute old
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("still blocked once the oldest failure left the window")
	}
	l.Fail("a")
	if wait, blocked := l.Blocked("a"); !blocked || wait != 10*time.Second {
		t.Fatalf("blocked=%v wait=%v, want 10s", blocked, wait)
	}
}
