package app

import (
	"strings"

	"regexp"
)

// Limits on names.
const (
	// MaxNameLength is the longest App name: a revision name adds
	// "-NNNNN" and must stay a 63-character DNS label.
	MaxNameLength = 63 - len("-00000")
	// maxLabelValueLength and maxDNSLabelLength are Kubernetes' limits.
	maxLabelValueLength  = 63
	maxDNSLabelLength    = 63
	maxDNSSubdomainLen   = 253
	maxAnnotationsBytes  = 256 << 10
	maxImageRefLength    = 512
	maxSecretKeyLength   = 253
	maxEnvNameLength     = 256
	maxHTTPHeaderNameLen = 256
)

var (
	// dns1035LabelRE is a DNS label that starts with a letter (RFC 1035),
	// as Knative requires of service names.
	// capabilityRE is a capability name, with or without CAP_, any case.
	capabilityRE = regexp.MustCompile(`^[A-Za-z][A-Za-z_]*$`)
	// networkNameRE is the syntax of network names (skiff network create).
	networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	// networkAliasRE is the syntax of a network alias: a DNS name.
	networkAliasRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$`)
	dns1035LabelRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	// dns1123LabelRE is a DNS label that may start with a digit (RFC 1123).
	dns1123LabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// labelValueRE is a Kubernetes label value (and the name part of a
	// label key).
	labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	// envNameRE is a Kubernetes environment variable name.
	envNameRE = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	// secretKeyRE is a Kubernetes Secret data key.
	secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	// revisionSuffixRE is what RevisionName appends to an App name.
	revisionSuffixRE = regexp.MustCompile(`-[0-9]{5}$`)
	// httpTokenRE is an HTTP header field name (RFC 9110 token).
	httpTokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

	// Image references: [HOST[:PORT]/]PATH[:TAG][@DIGEST], as the OCI
	// distribution spec defines them.
	imageHostRE      = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	imagePathRE      = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	imageTagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageDigestRE    = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)
	imageSHA256IDRE  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	reservedMountDir = []string{"/proc", "/sys", "/dev"}
)

// isDNSSubdomain reports whether s is lowercase DNS labels joined by
// dots, at most 253 characters.
func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > maxDNSSubdomainLen {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > maxDNSLabelLength || !dns1123LabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// qualifiedNameProblem returns why k is not a Kubernetes qualified name
// ([PREFIX/]NAME), or "" when it is one.
func qualifiedNameProblem(k string) string {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		name = k
	} else if !isDNSSubdomain(prefix) {
		return "key prefix must be a lowercase DNS subdomain such as example.com"
	}
	if name == "" || len(name) > maxLabelValueLength || !labelValueRE.MatchString(name) {
		return "key must be [PREFIX/]NAME where NAME is at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	}
	return ""
}

// imageRefProblem returns why ref is not an image reference or ID, or ""
// when it is one.
func imageRefProblem(ref string) string {
	const hint = `must be an image reference such as "localhost/shop:1.4" or "registry:5000/shop@sha256:…"`
	if len(ref) > maxImageRefLength {
		return "is too long (at most 512 characters)"
	}
	if imageSHA256IDRE.MatchString(ref) {
		return ""
	}
	name := ref
	if n, digest, ok := strings.Cut(ref, "@"); ok {
		if !imageDigestRE.MatchString(digest) {
			return `has a malformed digest: want ALGORITHM:HEX such as "sha256:3b4c…"`
		}
		name = n
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		if !imageTagRE.MatchString(name[i+1:]) {
			return "has a malformed tag: at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
		}
		name = name[:i]
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:[") || parts[0] == "localhost") {
		if !imageHostRE.MatchString(parts[0]) {
			return "has a malformed registry host"
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if !imagePathRE.MatchString(p) {
			if strings.ToLower(p) == p {
				return hint
			}
			return hint + " (repository names are lowercase)"
		}
	}
	return ""
}

// underReservedDir reports whether an absolute, clean path is or lies
// under a directory the runtime mounts itself.
func underReservedDir(p string) bool {
	for _, d := range reservedMountDir {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
