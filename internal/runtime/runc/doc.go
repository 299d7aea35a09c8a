// Package runc implements runtime.Runtime by executing an OCI runtime
// binary (runc by default; crun or any compatible binary by path) under
// conmon, the monitor podman and CRI-O use.
//
// # State directory
//
// Each Runtime owns one state directory (WithStateDir, default
// /run/skiff/runtime); several daemons can run side by side with their own:
//
//	runtime/            the runtime binary's --root
//	exits/<id>          conmon's exit file: the exit code, written when
//	                    the container's init process exits
//	containers/<id>/    meta.json (bundle, log, cgroups path), pid,
//	                    conmon.pid, conmon's "oom" and "exit" files,
//	                    exec process files
//	sock/<id>           conmon's attach-socket link to the bundle
//	crun-v1             the crun wrapper (hybrid cgroup layout only)
//
// # Create and the monitor
//
// Create writes config.json into the bundle and starts conmon with the
// runtime's --root, an exit directory, a k8s-file log and an fd for its
// sync pipe (_OCI_SYNCPIPE, as podman does). conmon forks, calls setsid and
// runs "<runtime> create"; its first process exits at once, so conmon is
// no child of the daemon and the container outlives it. Create returns
// when conmon reports the container's pid on the sync pipe, which it does
// right after "<runtime> create" exits (about 1 ms later); no polling of
// the -p pid file is needed. A failed create comes back on the same pipe
// with the runtime's message, and everything made so far is removed.
//
// conmon writes <bundle>/ctl, <bundle>/winsz and an attach socket in the
// bundle; Delete removes them (and nothing else of the bundle).
//
// # Exits
//
// Wait and Exited read exits/<id>. One inotify watch per Runtime on the
// exit directory wakes waiters the moment conmon renames the file into
// place; a container that exited while no daemon ran is seen at once. The
// exit code is 128+N for a process killed by signal N. OOMKilled is true
// when conmon wrote its "oom" file (it watches memory.oom_control on v1 and
// memory.events on v2) or the cgroup's oom_kill counter is non-zero; the
// cgroup stays until Delete, so the counter is still there to read.
// If conmon itself dies without writing the exit file (killed from
// outside), Wait notices through a pidfd and returns ErrUnavailable, and
// Delete does not wait for an exit that will never be recorded.
//
// # Logs
//
// The log is conmon's k8s-file format: "<RFC 3339 time> <stream> <F|P>
// <text>", P marking a line split because it was longer than conmon's
// buffer or not yet ended. When CreateOpts.LogMaxSize is set, conmon 2.1.6
// (--log-size-max) does not rotate: before a write would pass the cap it
// replaces the file with a new empty one (open <log>.tmp, rename over
// <log>), dropping the old content. The Runtime keeps it: it holds a
// second hard link to the current log, <dir>/.<name>.keep, and when
// inotify reports conmon's rename it moves that link to <log>.1 and links
// the new log. So <log> and <log>.1 are each at most LogMaxSize bytes
// (a single line longer than the cap excepted). Limits: while no Runtime
// runs, conmon still caps the log but the dropped content is lost (the
// next Runtime moves the last file it still links to <log>.1); a container
// writing faster than one rotation per watcher wake-up can make <log>.1
// hold an older file than the one just before <log>.
//
// # Attach
//
// conmon makes an attach socket (SOCK_SEQPACKET) in every bundle. Each
// piece of the container's output that conmon reads (8 KiB at most) is
// written to the log and then, as one message prefixed by a byte naming
// the pipe (2 stdout, 3 stderr), to every connection, with a blocking
// write: a connection that is not read stops conmon, and so the
// container. Attach reads every message; with --stdin, what is written on
// a connection goes to the process's stdin, and the connection's end
// (a half-close is enough) closes that, except with --leave-stdin-open,
// which a terminal with stdin gets so that its input survives a detach.
// An attachment made without stdin to a container with stdin is read to
// its end in the background when closed, instead of closing it and with
// it the process's stdin.
//
// # Exec, kill, state, delete
//
// Exec runs "<runtime> exec --process <file>" with the caller's stdio;
// fields the process leaves empty take the container's (cwd, env,
// capabilities, rlimits; no-new-privileges is kept), and seccomp and
// namespaces are the container's. The exit code is the process's; a
// failure of the runtime itself (missing binary: ErrInvalid) is an error.
// Delete kills the container (SIGKILL to all its processes) if it runs,
// waits for conmon's exit file and for conmon itself to end, deletes the
// runtime's state and cgroup and removes the monitor's files. It never
// touches the rootfs or the log. For a runc container whose init process
// has exited, with no hooks and no Intel RDT group, it does what "runc
// delete" does in-process — remove the cgroups listed in runc's
// state.json, deepest first, and runc's state directory — instead of
// starting runc (tens of milliseconds of CPU each); anything else, or a
// cgroup still holding processes, goes to "<runtime> delete --force".
//
// # A sealed runc
//
// runc protects itself against being overwritten from a container
// (CVE-2019-5736) by copying its ~9 MB binary into a sealed memfd before
// every "runc init", unless it already runs from one. New makes that copy
// once: it copies runc into a sealed memfd it keeps open and runs runc,
// and has conmon run it, as /proc/<daemon pid>/fd/<n>. Each create is a
// few milliseconds faster and the protection is the same. A runc upgraded
// on disk is used from the next daemon start.
//
// # crun
//
// WithRuntime("crun") works on pure v1 and v2 layouts as is. crun 1.8
// refuses the hybrid layout (v1 controllers plus a cgroup2 mount at
// /sys/fs/cgroup/unified); there every crun call goes through a small
// script in the state directory that enters a private mount namespace
// (unshare --mount), lazily unmounts /sys/fs/cgroup/unified there and
// execs crun. Create, start, state, kill, exec and delete all see the same
// --root, so the container is managed as usual; it costs one unshare
// (a few ms) per call. New returns ErrNotImplemented if unshare or umount
// is missing or the wrapper cannot run. Specs must carry an ociVersion
// of 1.0.x for crun 1.8 (package oci writes 1.0.2).
package runc
