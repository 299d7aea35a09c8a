//go:build tools

// Package pebble pins Let's Encrypt's pebble, a small ACME server for
// tests, which test/e2e/acme_test.go builds with
// "go build github.com/letsencrypt/pebble/v2/cmd/pebble" from this
// module and runs on loopback as the ACME directory of skiff's HTTPS
// ingress.
package pebble

import _ "github.com/letsencrypt/pebble/v2/cmd/pebble"
