// Package userns gives containers a user namespace: container root is an
// unprivileged range of host ids (an IDMap), and what the container must
// see as its own (image layers, named volumes) is shown to it through
// idmapped mounts.
//
// Vocabulary:
//   - range: HostID..HostID+Size-1, the host uids and gids that uid and
//     gid 0..Size-1 of the container are. Ranges are Size (65536) wide
//     and start at Base+N*Size; N is the range's index.
//   - holder: a process made only to create namespaces. It is cloned
//     into a new user namespace (and, when asked, a network namespace
//     that namespace owns), stopped before it runs any code, and killed
//     once the namespaces are pinned or used.
//   - pin: a bind mount of a namespace file (/proc/PID/ns/KIND) on a
//     file, which keeps the namespace alive without a process; runc
//     joins a pinned namespace by its path.
//   - spare: a pair of pinned namespaces (user, and network owned by
//     it) made for a range ahead of need, which a container of the range
//     takes at its start instead of making its own (see Spares).
//   - idmapped mount: a bind mount whose owners are shifted by a user
//     namespace's mapping (mount_setattr MOUNT_ATTR_IDMAP, Linux 5.12+;
//     overlayfs accepts idmapped lower layers from 5.19). A file owned
//     by uid 0 on disk shows as HostID through it, and a file the
//     container creates through it as HostID is stored as 0.
//
// A network namespace made by the daemon on the host belongs to the
// host's user namespace; a container in another user namespace cannot
// mount sysfs for it. Pin therefore makes the container's user and
// network namespaces together, the network one owned by the user one,
// and the container joins both.
//
// Errors: a kernel without idmapped mounts gives errdefs.ErrNotImplemented
// naming the fix (hostUsers: true, or --userns host).
package userns
