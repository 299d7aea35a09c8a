package api

import "skiff.dev/skiff/api/errdefs"

// The body of POST /images/build is the build context as a tar
// (Content-Type application/x-tar) or, when the build has secrets,
// multipart/form-data: one part per secret, named BuildSecretPart+ID and
// holding the value, then the context tar in the part named
// BuildContextPart, last. Secrets so travel only in the body: never in
// the URL, the context or a log.
const (
	BuildSecretPart  = "secret."
	BuildContextPart = "context"
	// MaxBuildSecretSize bounds one secret's value (as BuildKit does).
	MaxBuildSecretSize = 500 << 10
)

// CheckBuildSecretID says whether id can name a build secret: 1 to 128
// letters, digits, '_', '.' and '-', but not "." or "..".
func CheckBuildSecretID(id string) error {
	ok := id != "" && len(id) <= 128 && id != "." && id != ".."
	for _, c := range []byte(id) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && c != '_' && c != '.' && c != '-' {
			ok = false
		}
	}
	if !ok {
		return errdefs.Invalid("secret id %q is not valid: use 1 to 128 letters, digits, '_', '.' and '-'", id)
	}
	return nil
}
