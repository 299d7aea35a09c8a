// Package e2e drives real skiff daemons through the skiff binary, with
// real runc, conmon and images built from the repository's own programs.
// The tests need root and the Debian packages of `make deps-test`; they
// fail, never skip, when those are missing.
package e2e
