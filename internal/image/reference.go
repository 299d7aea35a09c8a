package image

import (
	"fmt"
	"strings"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/lazyregexp"
)

// Registry names used when normalising references.
const (
	// LocalDomain is the registry part given to short names that are
	// tagged, built or imported locally (podman's convention).
	LocalDomain = "localhost"
	// DockerDomain is the registry part short names are pulled from.
	DockerDomain = "docker.io"
	// DefaultTag is the tag of a reference that names neither a tag nor
	// a digest.
	DefaultTag = "latest"

	maxNameLength = 255
	minIDPrefix   = 4
)

var (
	// pathComponentRE is one repository path component: lowercase
	// alphanumerics, joined by ".", "_", "__" or runs of "-".
	pathComponentRE = lazyregexp.New(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// hostRE is a registry host: DNS labels joined by dots, an IPv4
	// address, or an IPv6 address in brackets; an optional port follows.
	hostRE   = lazyregexp.New(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	tagRE    = lazyregexp.New(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE = lazyregexp.New(`^sha256:[a-f0-9]{64}$`)
	hexRE    = lazyregexp.New(`^[a-f0-9]+$`)
)

// Reference is a parsed image reference: [DOMAIN/]PATH[:TAG][@DIGEST].
// The zero value is not a valid reference.
type Reference struct {
	// Domain is the registry host (and port). It is empty when the
	// reference was a short name such as "hello" or "team/hello".
	Domain string
	// Path is the repository path inside the registry, e.g.
	// "library/hello".
	Path string
	// Tag is the tag, empty when none was given.
	Tag string
	// Digest is the manifest digest ("sha256:..."), empty when none was
	// given.
	Digest string
}

// ParseReference parses a docker-style reference such as "hello",
// "hello:1.0", "localhost/hello:latest", "registry:5000/team/x@sha256:..."
// without applying defaults: a short name keeps an empty Domain and a
// reference without tag keeps an empty Tag. "docker.io/hello" and
// "index.docker.io/hello" normalise to "docker.io/library/hello". An
// invalid reference is an errdefs.ErrInvalid error naming it and why.
func ParseReference(s string) (Reference, error) {
	bad := func(why string, args ...any) error {
		return errdefs.Invalid("invalid image reference %q: %s", s, fmt.Sprintf(why, args...))
	}
	if s == "" {
		return Reference{}, bad("it is empty")
	}
	rest := s
	var ref Reference
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		ref.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRE.MatchString(ref.Digest) {
			return Reference{}, bad("digest %q is not \"sha256:\" followed by 64 lowercase hex digits", ref.Digest)
		}
	}
	// A tag follows the last colon that comes after the last slash;
	// a colon before it belongs to a registry port.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		ref.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(ref.Tag) {
			return Reference{}, bad("tag %q must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", ref.Tag)
		}
	}
	if rest == "" {
		return Reference{}, bad("it has no repository name")
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == LocalDomain || strings.ToLower(first) != first {
			if !hostRE.MatchString(first) {
				return Reference{}, bad("registry host %q is not a valid host[:port]", first)
			}
			ref.Domain = first
			rest = rest[i+1:]
		}
	}
	if ref.Domain == "index.docker.io" {
		ref.Domain = DockerDomain
	}
	for _, c := range strings.Split(rest, "/") {
		if c == "" {
			return Reference{}, bad("repository path %q has an empty component", rest)
		}
		if !pathComponentRE.MatchString(c) {
			if strings.ToLower(c) != c {
				return Reference{}, bad("repository name must be lowercase")
			}
			return Reference{}, bad("path component %q must be lowercase letters and digits separated by '.', '_', '__' or '-'", c)
		}
	}
	ref.Path = rest
	if ref.Domain == DockerDomain && !strings.Contains(ref.Path, "/") {
		ref.Path = "library/" + ref.Path
	}
	if ref.Domain == "" && len(ref.Path) == 64 && hexRE.MatchString(ref.Path) {
		return Reference{}, bad("a 64-character hex string is an image ID, not a repository name")
	}
	// A short name must still fit once qualified (docker.io/library/ is
	// the longest prefix it can get).
	if n := max(len(ref.Name()), len(ref.Remote().Name()), len(ref.Local().Name())); n > maxNameLength {
		return Reference{}, bad("the qualified name is %d characters long, the limit is %d", n, maxNameLength)
	}
	return ref, nil
}

// Name returns the repository name: "[DOMAIN/]PATH".
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String returns the reference in its canonical text form.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// IsShort reports whether the reference names no registry.
func (r Reference) IsShort() bool { return r.Domain == "" }

// withDefaults fills in the tag "latest" when neither a tag nor a digest is
// given.
func (r Reference) withDefaults() Reference {
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r
}

// Local returns the fully qualified name under which a new tag of r is
// stored: short names go under "localhost/" and the tag defaults to
// "latest".
func (r Reference) Local() Reference {
	if r.Domain == "" {
		r.Domain = LocalDomain
	}
	return r.withDefaults()
}

// Remote returns the fully qualified name r is pulled from: short names
// go to docker.io ("hello" is "docker.io/library/hello:latest").
func (r Reference) Remote() Reference {
	if r.Domain == "" {
		r.Domain = DockerDomain
		if !strings.Contains(r.Path, "/") {
			r.Path = "library/" + r.Path
		}
	}
	return r.withDefaults()
}

// Candidates returns the fully qualified names a lookup of r tries, in
// order: r itself when it names a registry, else "localhost/NAME" then
// "docker.io/[library/]NAME". Missing tags default to "latest".
func (r Reference) Candidates() []Reference {
	if r.Domain != "" {
		return []Reference{r.withDefaults()}
	}
	return []Reference{r.Local(), r.Remote()}
}

// parseID reports whether s names an image by ID and returns the hex
// digits: "sha256:<hex>" (a full digest or a prefix of at least 4 hex
// digits) or a bare lowercase hex string of at least 4 characters. When
// exact is true, s cannot be a repository name.
func parseID(s string) (hex string, exact bool, ok bool) {
	if h, found := strings.CutPrefix(s, "sha256:"); found {
		if len(h) >= minIDPrefix && len(h) <= 64 && hexRE.MatchString(h) {
			return h, true, true
		}
		return "", false, false
	}
	if len(s) >= minIDPrefix && len(s) <= 64 && hexRE.MatchString(s) {
		return s, len(s) == 64, true
	}
	return "", false, false
}

// refName reads an OCI layout's annotations for the name of a manifest: the
// containerd image name when present, else org.opencontainers.image.ref.name
// when it is a full reference (has a '/' or ':'). A bare ref.name such as
// "latest" is a tag without a repository and yields "".
func refName(annotations map[string]string) string {
	if n := annotations[annotationContainerdName]; n != "" {
		if ref, err := ParseReference(n); err == nil {
			return ref.Local().String()
		}
	}
	n := annotations[annotationRefName]
	if n == "" || !strings.ContainsAny(n, "/:@") {
		return ""
	}
	ref, err := ParseReference(n)
	if err != nil {
		return ""
	}
	return ref.Local().String()
}
