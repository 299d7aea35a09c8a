// Package apiserver serves skiff's REST API (see docs/api.md) over the
// daemon's subsystems. It is the one place where error categories
// (internal/errdefs) become HTTP statuses. Request bodies are size-capped
// and decoded strictly: unknown fields are rejected with the field named.
package apiserver
