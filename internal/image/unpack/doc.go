// Package unpack applies one image layer (an uncompressed tar stream) to
// one empty directory in overlayfs format, so that the unpacked layers of an
// image can be stacked as overlay lowerdirs (lowerdir=top:...:bottom).
//
// # Contract
//
// Apply writes every entry of the layer into the directory it is given and
// nowhere else, or refuses the layer. A refused or failed layer leaves the
// directory empty: Apply removes whatever it wrote. Apply never follows a
// symlink while writing: every path is resolved one component at a time with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) from a descriptor of the
// layer directory, and every node is created with an *at system call
// relative to its parent's descriptor.
//
// # Entry names
//
// Names are cleaned lexically ("a/./b//c/" is "a/b/c"). A leading "/" is
// dropped: "/etc/passwd" is the layer's etc/passwd. Docker, containerd and
// the tars real images carry all treat absolute names as relative to the
// layer root, and refusing them would refuse valid images, while dropping
// the "/" cannot reach outside the root. A name whose ".." components climb
// above the root ("../x", "a/../../x", and "/../x" alike) is refused. The
// root itself ("/", "./") carries no content: a directory entry for it is
// accepted and its owner, mode and times are reported in Stats.Root, not
// given to the directory Apply writes into, which is the caller's (the
// image store decides which layer's root a container's root takes); any
// other type is refused. A name component other than the
// last that begins with ".wh." is refused: that prefix is reserved for
// whiteouts.
//
// # Entry types
//
//   - Regular files are streamed to disk. GNU sparse files (old GNU and
//     PAX formats) keep their holes; as a few bytes of tar can declare
//     terabytes of holes, a layer whose sparse files add up to more than
//     16 GiB is refused.
//   - Directories are created; a directory entry over an existing directory
//     only updates its metadata. Directories the layer does not list but
//     needs as parents are created with mode 0755, owned by 0:0 (layer
//     writers list parents; Options.Lowers are not consulted for them).
//   - Symlinks are stored as they are; an absolute target such as
//     /bin/busybox is normal and is resolved inside the container by the
//     kernel. A target whose ".." components, read lexically from the
//     link's own directory (or from the root for an absolute target),
//     climb above the root is refused. A later entry whose path goes
//     through a symlink ("a/b" after the symlink "a") is refused, whatever
//     the link points to.
//   - Hardlinks must name an existing non-directory inside the layer stack.
//     A target written earlier in this layer is linked; a target found only
//     in Options.Lowers (searched top first, honouring whiteouts and opaque
//     directories) is copied into the layer with its metadata, since a
//     hardlink cannot cross layer directories. Further links to the same
//     lower file are linked to that copy. A target that escapes the root,
//     goes through a symlink, is a directory or does not exist is refused.
//   - Fifos are allowed, as Docker allows them.
//   - Character and block devices, and hardlinks to them, are skipped
//     and counted in Stats.SkippedDevices unless Options.AllowDevices is
//     set: root filesystem tarballs usually hold dev/console, dev/null and
//     the like, and the runtime gives every container its own /dev. Nothing
//     is written for a skipped entry: an earlier entry of the same name in
//     the layer stays. A device number out of range, and a character device
//     0/0, are refused even so: in overlayfs format 0/0 means "deleted";
//     layers express deletion with whiteouts.
//   - PAX global headers and AUFS metadata (names starting ".wh..wh."
//     other than the opaque marker, and everything below them) are
//     skipped; every other type is refused.
//
// Later entries replace earlier ones with the same name, as tar extraction
// does; a replaced directory is removed with its contents, except that a
// directory over a directory only updates metadata.
//
// # Whiteouts
//
// An OCI whiteout ".wh.NAME" becomes a character device 0/0 NAME with mode
// 0000, owned by 0:0. Following the OCI image spec, a whiteout only hides
// what lower layers hold: when NAME already exists in this layer the
// whiteout is a no-op. When a later entry of the layer replaces the
// whiteout with a directory, that directory is marked opaque, so the
// deleted lower directory stays deleted. The opaque marker
// "DIR/.wh..wh..opq" sets the xattr trusted.overlay.opaque=y on DIR. An
// opaque marker on the layer root is refused: overlayfs ignores opaque
// roots of lower layers, so it cannot be expressed.
//
// # Metadata
//
// Numeric ownership, permission bits with setuid, setgid and sticky, mtimes
// and atimes (directories' times are set once the layer is complete) and
// xattrs (PAX SCHILY.xattr.*) are kept; xattrs are set after ownership so
// that security.capability survives the chown. Xattrs in the
// trusted.overlay. and user.overlay. namespaces are refused: they steer
// overlayfs itself; so are user.* xattrs on symlinks, which Linux does not
// allow. Writing trusted.* xattrs and device nodes needs root
// (CAP_SYS_ADMIN, CAP_MKNOD).
//
// # Errors
//
// A refused entry is an *EntryError naming the entry as the tar spells it;
// it and any malformed, truncated or compressed stream match
// errdefs.ErrInvalid. An error of the reader itself is returned wrapped
// unchanged, keeping the reader's category. A failing file system (disk
// full, no xattr support) is errdefs.ErrUnavailable. A directory that is
// missing is errdefs.ErrNotFound; one that is not empty is
// errdefs.ErrConflict and is left untouched.
//
// Apply may run concurrently on different directories. It does not
// fsync: callers that need the layer on stable storage sync the file
// system (syncfs) before recording the layer as unpacked.
package unpack
