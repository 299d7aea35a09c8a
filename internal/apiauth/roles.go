package apiauth

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"skiff.dev/skiff/api"
)

// Call is what a request asks, as far as roles care.
type Call struct {
	Method string
	Path   string // the URL path, e.g. /v1/apps/shop/rollback
	// App is the App a POST /v1/apps applies (from its body).
	App string
	// Reveal is set for a read of secret values (GET /v1/secrets/NAME
	// with reveal), which only an admin may make.
	Reveal bool
	// AppSecrets are the secrets the App of an identity token references
	// (RoleApp only): the ones it may read.
	AppSecrets []string
}

// RoleApp is the role of an App's identity token (internal/identity):
// it may read its own App and the secrets its spec references.
const RoleApp = "app"

// allowApp is Allow for an identity token of App t.App.
func allowApp(t api.Token, c Call) string {
	deny := "the identity token of App " + quote(t.App) + " may only read its App and the secrets its spec references: " + c.Method + " " + c.Path + " is refused"
	if Mutating(c.Method) {
		return deny
	}
	if rest, ok := strings.CutPrefix(c.Path, "/v1/apps/"); ok {
		if name, _, _ := strings.Cut(rest, "/"); name == t.App {
			return ""
		}
		return deny
	}
	if name, ok := strings.CutPrefix(c.Path, "/v1/secrets/"); ok && slices.Contains(c.AppSecrets, name) {
		return ""
	}
	return deny
}

// deployerVerbs are the App calls a deployer may make: apply (App from
// the body), delete, roll back and scale.
func deployerApp(c Call) (app string, ok bool) {
	if c.Method == http.MethodPost && c.Path == "/v1/apps" {
		return c.App, true
	}
	rest, found := strings.CutPrefix(c.Path, "/v1/apps/")
	if !found || rest == "" {
		return "", false
	}
	name, verb, _ := strings.Cut(rest, "/")
	switch {
	case c.Method == http.MethodDelete && verb == "",
		c.Method == http.MethodPost && (verb == "rollback" || verb == "scale"):
		return name, true
	}
	return "", false
}

// Mutating reports whether method changes anything (everything but GET
// and HEAD).
func Mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

// Allow returns nil if t may make call c, or a message saying why not,
// naming the token's role. Token management is refused to every token:
// it is only served on the unix socket.
func Allow(t api.Token, c Call) (reason string) {
	if c.Path == "/v1/tokens" || strings.HasPrefix(c.Path, "/v1/tokens/") {
		return "tokens are managed only on the daemon's unix socket (run skiff token on the host as root)"
	}
	if t.Role == api.RoleAdmin {
		return ""
	}
	if t.Role == RoleApp {
		return allowApp(t, c)
	}
	if c.Reveal {
		return "token " + t.Name + " has role " + t.Role + ": reading secret values (reveal) needs an admin token"
	}
	if !Mutating(c.Method) {
		return ""
	}
	switch t.Role {
	case api.RoleViewer:
		return "token " + t.Name + " has role viewer, which may only read: " + c.Method + " " + c.Path + " needs a deployer or admin token"
	case api.RoleDeployer:
		app, ok := deployerApp(c)
		if !ok {
			return "token " + t.Name + " has role deployer, which may only apply, roll back, scale and delete Apps: " + c.Method + " " + c.Path + " needs an admin token"
		}
		if m, err := path.Match(t.App, app); err != nil || !m || app == "" {
			return "token " + t.Name + " has role deployer for Apps matching " + quote(t.App) + ", which does not match App " + quote(app)
		}
		return ""
	}
	return "token " + t.Name + " has unknown role " + quote(t.Role)
}

func quote(s string) string { return `"` + s + `"` }
