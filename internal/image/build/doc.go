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
// a container on Options.Runtime (see run.go): the stage's layers,
// unpacked once per build under Options.WorkDir, are the overlay's lower
// directories under a fresh upper directory, with the stage's ENV, ARG
// values, WORKDIR, USER and SHELL, the default capabilities and seccomp
// profile, and no network but loopback. The upper directory becomes the
// step's layer (diff.go): overlay whiteouts and opaque directories as OCI
// whiteouts, owners, modes, xattrs, hard links and mtimes kept, mount
// points the runtime created left out; an empty change adds no layer. A
// step that exits non-zero is an ErrInvalid error with its exit code and
// last output lines; its container, mount and directories are removed
// whatever happens. Without a Runtime, RUN is refused.
//
// Refused with an errdefs.ErrInvalid error naming the Dockerfile line:
// RUN --mount and --security, RUN --network other than none, a RUN
// heredoc script starting with #!, remote ADD sources (URLs, git) and
// COPY --parents.
//
// Semantics follow BuildKit where docker's builders differ: stages a
// target does not need are not built (so they may hold RUN), a wildcard
// that matches nothing copies nothing, COPY --from keeps the owners the
// files have in the source stage or image, and an ENV wins over an ARG of
// the same name.
//
// The result is a v1.Image with OCI media types (manifest, config, gzip
// layers), one layer per COPY and ADD (and per WORKDIR that creates a
// directory, and per RUN that changes something), and one history entry
// per instruction like docker's. A COPY, ADD or WORKDIR layer also holds
// the directories on the way to its entries, as they are, so a layer
// unpacked by itself (an overlay lower directory) keeps their owners. Files
// from the context are owned by root unless --chown says otherwise.
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
