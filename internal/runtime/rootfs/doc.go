// Package rootfs mounts and unmounts a container's root filesystem: an
// overlay of read-only image layers (lower directories, top first) under
// a writable upper directory.
//
// Mount works for any number of layers. When the mount options fit in
// one page (the limit of mount(2)) they are passed as absolute paths;
// otherwise each layer is added on its own with the new mount API
// (fsopen/fsconfig "lowerdir+", Linux 6.8+), and on older kernels the
// layers are named by short /proc/self/fd/N links to descriptors opened
// for the call, which fits about 200 layers in a page. Beyond that Mount
// returns errdefs.ErrInvalid.
//
// The root of an overlay takes its owner, mode and times from the upper
// directory. Mount creates the upper directory with those of the top lower
// directory, which the image store gives the image root's (a non-root
// process must be able to read "/"); an existing upper directory keeps
// what the container made of its root.
//
// An image with no layers gets an empty lower directory, made beside the
// upper directory (<dir of upper>/lower-empty), mode 0755 owned by
// root, and so does its root. Unmount is idempotent and
// falls back to a lazy (MNT_DETACH) unmount when the mount is busy.
package rootfs
