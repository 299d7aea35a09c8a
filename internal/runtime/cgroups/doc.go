// Package cgroups detects the host's cgroup layout and reads a
// container's counters (CPU time, memory, pids, OOM kills) by its
// cgroupsPath, the path the OCI spec names relative to each hierarchy's
// root.
//
// Layouts:
//   - "v2": /sys/fs/cgroup is the unified (cgroup2) hierarchy.
//   - "v1": one hierarchy per controller, /sys/fs/cgroup/<controller>.
//   - "hybrid": v1 hierarchies plus a cgroup2 mount at
//     /sys/fs/cgroup/unified, which holds no controller runc uses (only
//     hugetlb, or nothing); counters are read from the v1 hierarchies.
//
// Detection and reads look only at files, so a fake tree in a test
// directory reads like the real one.
package cgroups
