// Package registry serves skiff's image store over the OCI Distribution
// Specification v1.1: pull (manifests and blobs by tag and digest, HEAD,
// Range), push (monolithic, chunked and resumable, cross-repository
// mount, upload cancel), content discovery (tags list with pagination,
// referrers) and content management (deletes, when enabled).
//
// # One store
//
// The registry keeps nothing of its own: blobs are the store's
// images/blobs/<alg>/<hex> files, and a repository's tags and manifests
// are index.json entries (see internal/image, distribution.go). A
// repository name maps to a store name: a name whose first component
// contains a "." or is "localhost" is taken as it is
// ("localhost/hello", "docker.io/library/alpine"); any other name is a
// short name under "localhost/" ("hello" is "localhost/hello", "team/x"
// is "localhost/team/x"). So an image tagged "hello:1.0" in skiff is
// pulled as ADDR/hello:1.0, and an image pushed to ADDR/hello:1.0 is
// "localhost/hello:1.0" in skiff image ls, ready to run. Store names
// whose registry part has a port ("registry:5000/x") are not served.
//
// Manifests, indexes and artifacts of any media type are stored as they
// came, byte for byte, and served with the media type they were pushed
// with; digests are checked on upload. A manifest pushed by tag that
// replaces another leaves the old one untagged, for skiff image prune to
// collect; a deleted tag leaves its manifest in the repository by digest.
//
// # Uploads
//
// An upload is written to a file in the store's temporary area and
// hashed as it arrives; only once the whole content has the digest the
// client names is the file synced and renamed into place, so a blob
// under its digest is always whole, also after a kill mid-upload (a
// restart removes unfinished uploads). Identical concurrent uploads each
// write their own file and rename it onto the same name. A finished or
// cancelled session is forgotten: using it again is BLOB_UPLOAD_UNKNOWN.
// A blob received or mounted is leased for the upload max age, so that
// skiff image prune keeps it for the manifest that will name it.
//
// # Access
//
// Reads and writes need the credentials of a user in the htpasswd file
// (bcrypt entries, as skiff registry user add writes them), sent with
// HTTP basic auth (docker login works). Reads of repositories that match
// an anonymous-read pattern (path.Match syntax on the repository name,
// "public/*") need none; an anonymous reader gets only the blobs the
// repository's manifests name.
package registry
