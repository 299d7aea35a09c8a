// Package apiauth guards the API served over TCP: bearer tokens (made
// here, stored as hashes), what each role may do, a per-address limit on
// authentication failures, and the audit events of calls.
//
// Secrets are 32 random bytes; only their SHA-256 is stored. A fast hash
// is enough for such secrets (a password hash's slowness guards guessable
// inputs, and 256 random bits are not guessable), and lets the daemon
// check a token on every request. Hashes are compared in constant time.
package apiauth
