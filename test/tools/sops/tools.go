//go:build tools

// Package sops pins the sops command (github.com/getsops/sops/v3), which
// test/e2e/gitops_sops_real_test.go builds from this module and runs to
// encrypt fixtures with an age key at test time, so skiff's own SOPS
// decoder (internal/gitops) is checked against what the real tool writes.
// It is a module of its own because sops brings every cloud KMS SDK with
// it, which skiff itself does not link.
package sops

import _ "github.com/getsops/sops/v3/cmd/sops"
