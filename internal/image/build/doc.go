// Package build builds OCI images from Dockerfiles: an image is its base
// plus files copied from the build context, other stages or local images,
// plus what its RUN steps change, plus configuration.
//
// Parsing is BuildKit's own (frontend/dockerfile/parser and instructions)
// and $VAR expansion its shell lexer, so a Dockerfile means here what it
// means to docker. Supported: FROM scratch, a local image or an earlier
// stage (with --platform); COPY and ADD of context files, directories and
// wildcards (path.Match per component, like docker), heredocs, --from=
// <stage name|index|image>, --chown (numeric or names from the image's
// /etc/passwd and /etc/group), --chmod (octal), --exclude, --link
// (accepted, a no-op); ADD extraction of local tar archives (gzip, bzip2,
// xz, zstd or none; owners, modes and hard links kept); ENV, ARG (also before FROM, with --build-arg and
// the automatic TARGET*/BUILD* platform ARGs), WORKDIR (created, owned by
// the USER in effect), USER, EXPOSE, LABEL, CMD and ENTRYPOINT (shell form
// becomes SHELL or ["/bin/sh","-c",...]), STOPSIGNAL, and the metadata
// instructions docker records for later: HEALTHCHECK, VOLUME, SHELL,
// MAINTAINER and ONBUILD (whose triggers run when a build starts FROM an
// image that has them).
//
// RUN (shell, exec and heredoc forms; also as an ONBUILD trigger) runs in
// a container on Options.Runtime (see run.go): the stage's layers (the
// image store's own directories for a local image's layers, when the
// store offers them; others unpacked once per build under
// Options.WorkDir) are the overlay's lower directories under a fresh
// upper directory, with the stage's ENV, ARG
// values, WORKDIR, USER and SHELL, the default capabilities and seccomp
// profile. A step is on skiff's default network through
// Options.Networks, unless Options.Network or RUN --network is "none"
// (loopback only; so is every step of a build without Networks); host is
// refused. RUN --mount (mounts.go, BuildKit's syntax and parser) adds
// cache directories kept under Options.CacheDir, secrets from
// Options.Secrets (files under WorkDir that live as long as the step, or
// variables; never in a layer, the history or the progress), read-only
// or throwaway-writable binds of the context, a stage or an image, and
// tmpfs. The upper directory becomes the
// step's layer (diff.go): overlay whiteouts and opaque directories as OCI
// whiteouts, owners, modes, xattrs, hard links and mtimes kept, mount
// points the runtime created (and their parents, and directories copied
// up only to hold them) left out; an empty change adds no layer. A
// step that exits non-zero is an ErrInvalid error with its exit code and
// last output lines; its container, mount and directories are removed
// whatever happens. Without a Runtime, RUN is refused.
//
// With Options.Cache, each step that makes a layer (RUN, COPY, ADD, a
// WORKDIR that creates its directory) is looked up first under a key
// made as BuildKit's (cache.go): the chain ID of the layers below, the
// platform, the instruction after expansion with the state it reads (for
// RUN its environment, user, working directory, network mode and mount
// specs, a bind mount of the context by the files under its source, a
// secret by its id only), for COPY and ADD from the context a digest of
// exactly the files they read (metadata, mtime and content), for --from
// the source's chain ID, and SOURCE_DATE_EPOCH. A hit appends the stored
// layer as it is, without running, re-tarring or unpacking anything, and
// ends the step's progress line with " CACHED"; a miss stores the step's
// result. Options.NoCache skips lookups; Options.Pull fetches FROM and
// --from images through Options.Puller before reading them.
//
// Refused with an errdefs.ErrInvalid error naming the Dockerfile line:
// RUN --security, RUN --network=host, RUN --mount=type=ssh, a RUN
// heredoc script starting with #!, remote ADD sources (URLs, git) and
// COPY --parents.
//
// Stages build in parallel: each starts once the stages it is FROM or
// copies from are built, at most one per CPU (two at least), and the
// first failure cancels the others (their RUN containers are stopped)
// before Build returns it, with nothing left in WorkDir.
//
// Progress is reported as api.BuildEvent values to Options.Events: a
// step's start (its stage, its place in the stage, the instruction), the
// lines its RUN prints, and its end (duration, cached, error); steps of
// parallel stages interleave and name their stage. Options.Progress gets
// each event's line of text ("[build] STEP 2/3: COPY ..."). Options.Labels
// are set in the image config over the Dockerfile's LABELs.
//
// Semantics follow BuildKit where docker's builders differ: stages a
// target does not need are not built (so they may hold RUN), a wildcard
// that matches nothing copies nothing, COPY --from keeps the owners the
// files have in the source stage or image, and an ENV wins over an ARG of
// the same name.
//
// The result is a v1.Image with OCI media types (manifest, config, gzip
// layers at the fastest level), one layer per COPY and ADD (and per
// WORKDIR that creates a directory, and per RUN that changes something),
// and one history entry per instruction like docker's. A COPY or ADD
// layer lists the directories on the way to its files as they are, so it
// unpacks on its own as it does stacked. Files
// from the context are owned by root unless --chown says otherwise.
//
// With Options.Commit, the layers the build has unpacked (RUN upper
// directories, COPY and ADD layers unpacked while they were written) are
// offered to the image store (UnpackedDir) before the build's work
// directory is removed, so the built image's first run unpacks nothing.
//
// Builds without RUN are reproducible: the same Dockerfile, build args and context
// (contents, modes and mtimes) give the same image digest. Entries keep
// their mtimes (web servers derive Last-Modified and ETag from them);
// directories the build creates get the Unix epoch; the image's creation
// time is the newest mtime it adds, or its base's. With the
// SOURCE_DATE_EPOCH build arg, mtimes newer than it are clamped to it and
// it becomes the creation time, so fresh checkouts build identical images.
//
// Layers are written to unlinked temporary files under os.TempDir that
// live as long as the returned image is referenced.
//
// The context is read only inside it, with internal/inroot: symlinks (the
// Dockerfile, the ignore file, COPY and ADD sources and the directories
// on their way) resolve within the context, and only regular files are
// read, the Dockerfile and ignore files up to 4 MiB. A context uploaded
// to the daemon so cannot make it read its own files, block on a FIFO or
// read a device, and messages name files relative to the context.
//
// Errors are classified with internal/errdefs: Dockerfile mistakes and
// unsupported instructions are ErrInvalid, missing files, stages and
// images are ErrNotFound, a failing image store or disk is
// ErrUnavailable. Messages start with "Dockerfile:N:" when they are about
// a line.
package build
