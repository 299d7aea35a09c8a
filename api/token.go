package api

import "time"

// Roles of API tokens (see docs/api.md, Authentication).
const (
	// RoleAdmin may do everything the API offers over TCP.
	RoleAdmin = "admin"
	// RoleDeployer may read, and apply, roll back, scale and delete the
	// Apps its pattern names.
	RoleDeployer = "deployer"
	// RoleViewer may only read (GET).
	RoleViewer = "viewer"
)

// Token describes an API token; the secret itself is shown once, when it
// is made, and never stored.
type Token struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// App is the path.Match pattern of the Apps a deployer may change.
	App      string     `json:"app,omitempty"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"lastUsed,omitempty"`
}

// TokenCreateRequest is the body of POST /v1/tokens.
type TokenCreateRequest struct {
	Name string `json:"name,omitempty"` // default: the role and a random suffix
	Role string `json:"role"`
	App  string `json:"app,omitempty"`
	// Expires is a duration ("720h"); empty for a token that never expires.
	Expires string `json:"expires,omitempty"`
}

// TokenCreateResponse is the token made, with its secret.
type TokenCreateResponse struct {
	Token
	// Secret is the bearer token; the daemon keeps only its hash.
	Secret string `json:"token"`
}

// Audit events: Kind is EventKindAPI, Name is who called (a token's
// name, or "socket"), Reason is one of these.
const (
	EventKindAPI      = "API"
	ReasonAPICall     = "Call"       // a mutating call and its status
	ReasonAuthFailed  = "AuthFailed" // a missing, unknown, expired token
	ReasonRateLimited = "RateLimited"
)
