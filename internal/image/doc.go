// Package image is skiff's image store: images kept as an OCI image layout
// under <root>/images, and their layers unpacked once per chain ID under
// <root>/layers, ready to be stacked as overlay lowerdirs.
//
// # On disk
//
//	images/oci-layout, images/index.json  the OCI image layout
//	images/blobs/sha256/<hex>               manifests, configs, layers
//	images/blobs/sha512/<hex>               content pushed with sha512 digests
//	images/.tmp/                            blobs and imports in progress
//	images/.tmp/uploads/                    registry uploads in progress
//	layers/<chain-id-hex>/                  one unpacked layer (overlay format)
//	layers/.tmp-*/                          unpacks in progress
//	buildcache/index.json                   the build cache: step key → layer blob
//	buildcache/mounts/                      RUN --mount=type=cache directories
//
// Layers are unpacked when an image enters the store: Save (a build),
// Import, ImportRootfs and Pull unpack every layer the store does not
// have yet before the image is added to the index, and refuse an image
// whose layer does not unpack. So an image's first Resolve unpacks
// nothing (Resolve still unpacks what is missing, e.g. layers of an
// index.json another program wrote). A layer that comes unpacked already
// (PreparedLayer: a build's RUN upper directories and COPY layers) is
// moved into place instead. ImportRootfs reads its tar once, hashing,
// compressing (gzip, LayerCompression) and unpacking it as it arrives.
//
// Each index.json entry is an image manifest whose
// org.opencontainers.image.ref.name annotation holds the fully qualified
// reference pointing at it ("localhost/hello:latest",
// "registry:5000/team/x@sha256:..."). An image with several tags has one
// entry per tag; an image without tags (dangling) has one entry without
// the annotation. So `skopeo inspect oci:<root>/images:<ref>` and
// `umoci ls --layout <root>/images` read the store.
//
// An image is identified by its ID, the digest of its config; List shows
// one entry per ID with all its tags.
//
// The registry (internal/registry, distribution.go) stores what clients
// push in the same layout: a manifest pushed by digest is an entry whose
// ref name is "NAME@DIGEST", and entries that are not runnable images
// (OCI artifacts, indexes without an image for this host, sha512 content)
// are kept and served but skipped by List and lookups.
//
// # References
//
// Users type docker-style references, [REGISTRY/]PATH[:TAG][@DIGEST]; see
// ParseReference for the grammar. The first path component is a registry
// when it contains "." or ":", is "localhost", or has upper case letters.
// References are normalised to fully qualified names:
//
//   - A name with a registry part stays as it is ("docker.io/hello" and
//     "index.docker.io/hello" become "docker.io/library/hello").
//   - A short name ("hello", "hello:1.0", "team/hello") is looked up as
//     "localhost/NAME:TAG", then as "docker.io/[library/]NAME:TAG".
//   - New tags made by Tag, Save (a build) or Import of a short name are
//     stored as "localhost/NAME:TAG" (podman's convention).
//   - Pull of a short name goes to docker.io (library/ for one component).
//   - The tag defaults to "latest". A digest reference (NAME@sha256:...)
//     matches an image of that repository whose manifest has the digest.
//   - An image ID, "sha256:<hex>" or a bare hex string, resolves by ID: a
//     full ID, or a unique prefix of at least 4 hex digits. A bare hex
//     string is first tried as a name. An ambiguous prefix is ErrInvalid
//     naming the candidates.
//   - An unknown image is ErrNotFound telling how to build, import or
//     pull it; a malformed reference is ErrInvalid naming it and why.
//
// Archives name their images in their own ways: a docker save archive by
// RepoTags; an OCI layout by the io.containerd.image.name annotation, or
// by org.opencontainers.image.ref.name when it is a full reference (has a
// "/", ":" or "@"). A bare ref.name such as "latest" is a tag without a
// repository: that image is imported untagged, kept by ID.
//
// # Layer roots
//
// A container's root takes its owner, mode and times from the top layer
// directory of its image (see internal/runtime/rootfs). Each layer
// directory therefore holds those of the image root as of that layer: the
// root entry ("./") of the lowest layer that has one, else 0755 owned by
// 0:0. A root entry in a higher layer is ignored: it often describes a
// temporary build directory (0700) and would lock users other than root
// out of "/". A directory whose attributes came from a root entry carries
// the xattr trusted.skiff.root, so the layers above it keep them. Device
// nodes in a layer are left out (unpack's rules), with one warning per
// layer in the store's log.
//
// # Consistency
//
// Every write of index.json goes through a synced temporary file renamed
// into place. Blobs are written (verified against their digests, synced)
// before the index entry naming them, so a crash never leaves index.json
// pointing to a missing blob; it may leave unreferenced blobs, which
// Prune removes. A layer is unpacked (or a prepared one moved) into
// layers/.tmp-* and renamed to its chain ID once complete, synced, and
// checked against its diff ID (a prepared layer by its maker, which wrote
// the tar from it or unpacked it from the very bytes hashed), so a layer
// directory under its real name is always whole; Open removes leftovers of
// both kinds.
//
// The Store is safe for concurrent use. One process opens a root at a
// time (Open clears the temporary files of the previous one); other
// programs may read the layout, and a change they make to index.json is
// noticed and reloaded. Remove and Prune change the index and delete what
// no index entry needs under the index write lock. Readers look images up
// and read their metadata under the read lock, so an image visible by a
// tag or an ID always has every blob it needs. Operations that go on
// reading after the lookup (pull, import, unpack, push) pin the blobs and
// layer directories they use first, so Remove and Prune never delete
// them, even when the image leaves the index meanwhile. Images used by
// containers stay in index.json until
// they are no longer used (Remove only untags them), so a Prune never
// deletes anything a tag or a container still uses.
//
// # Build cache
//
// BuildCache keeps the results of build steps by key (see
// internal/image/build): a layer blob in blobs/, or none. Its index is
// replaced atomically on each change. The sweeps of Remove and Prune
// keep every blob an entry names; an entry whose blob is gone is a miss.
// Prune empties the cache (entries and cache mounts) before it sweeps,
// and BuildCache.Prune drops entries by last use.
//
// # Limits
//
// WithMaxImageSize (skiff daemon --max-image-size, default 20 GiB)
// bounds what one operation brings in, checked while reading rather than
// afterwards: an import archive once decompressed, each docker save layer
// decompressed, the compressed layers a manifest lists (summed before any
// is fetched), and the layers one Resolve unpacks, decompressed. A blob
// is read at most one byte past its descriptor's size. Refusals are
// ErrInvalid and name the limit and the flag.
//
// Errors are classified with internal/errdefs: ErrInvalid for bad
// references and bad archives (the index is then unchanged), ErrNotFound
// for unknown images, ErrConflict for removing an image in use,
// ErrUnavailable for registry and disk failures, ErrUnauthorized for
// registry credentials.
package image
