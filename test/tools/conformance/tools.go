//go:build tools

// Package conformance pins the OCI distribution-spec conformance suite,
// which test/e2e/registry_test.go builds with
// "go build github.com/opencontainers/distribution-spec/conformance"
// from this module and runs against skiff's registry.
package conformance

import _ "github.com/opencontainers/distribution-spec/conformance"
