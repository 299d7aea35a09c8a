package cli

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/buildcontext"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

func newImageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Manage images: build, import, pull, push, tag, list, inspect, remove, prune",
	}
	c.AddCommand(newImageLsCmd(g, "ls"), newImageInspectCmd(g), newImageImportCmd(g), newImagePullCmd(g),
		newImagePushCmd(g), newImageTagCmd(g), newImageRmCmd(g), newImagePruneCmd(g), newImageBuildCmd(g))
	return c
}

// newImagesCmd is `skiff images`, docker's short form of image ls.
func newImagesCmd(g *globals) *cobra.Command {
	c := newImageLsCmd(g, "images")
	c.Hidden = true
	return c
}

// splitRef splits a fully qualified reference into repository and tag
// (or digest) for display.
func splitRef(ref string) (repo, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// imageTable has a row for each of an image's names.
var imageTable = table[api.Image]{
	header:     "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE",
	wideHeader: "REPOSITORY\tTAG\tIMAGE ID\tDIGEST\tCREATED\tSIZE\tLAYERS\tPLATFORM",
	id:         func(img api.Image) string { return img.ID },
	rows: func(w io.Writer, img api.Image, wide bool, now time.Time) {
		tags := slices.Sorted(slices.Values(img.Tags))
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, t := range tags {
			repo, tag := splitRef(t)
			if t == "<none>:<none>" {
				repo, tag = "<none>", "<none>"
			}
			created := ago(img.Created, now)
			if wide {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s/%s\n", repo, tag, shortID(img.ID), shortID(img.Digest), created, humanSize(img.Size), len(img.Layers), img.OS, img.Architecture)
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", repo, tag, shortID(img.ID), created, humanSize(img.Size))
		}
	},
}

func newImageLsCmd(g *globals, use string) *cobra.Command {
	var output string
	var quiet bool
	c := &cobra.Command{
		Use:     use,
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outWide, outJSON, outYAML); err != nil {
				return err
			}
			imgs, err := g.client().Images(cmd.Context())
			if err != nil {
				return err
			}
			return imageTable.print(g.stdout, output, quiet, imgs)
		},
	}
	addOutputFlag(c, &output, outWide, outJSON, outYAML)
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only image IDs")
	return c
}

func newImageInspectCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "inspect [flags] IMAGE...",
		Short: "Show images in detail",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			var out []api.Image
			for _, ref := range args {
				img, err := g.client().Image(cmd.Context(), ref)
				if err != nil {
					return err
				}
				out = append(out, img)
			}
			return printStructured(g.stdout, output, out)
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func printImported(g *globals, imgs []api.Image) {
	for _, img := range imgs {
		name := strings.Join(img.Tags, ", ")
		if name == "" {
			name = "<untagged>"
		}
		fmt.Fprintf(g.stdout, "Loaded image: %s (%s)\n", name, shortID(img.ID))
	}
}

func newImageImportCmd(g *globals) *cobra.Command {
	var rootfs bool
	var changes []string
	var message string
	c := &cobra.Command{
		Use:     "import FILE|DIR  |  import --rootfs FILE|- NAME[:TAG]",
		Aliases: []string{"load"},
		Short:   "Import images from an OCI archive, an OCI layout directory, a docker save tar, or a root filesystem tar",
		Long: `Import images from an OCI archive (tar, optionally gzip or zstd compressed),
an OCI image layout directory, or a tar made by "docker save". Use - to read
the archive from stdin.

With --rootfs, FILE is a root filesystem tar (plain, gzip or zstd) that
becomes a one-layer image named NAME[:TAG], as "docker import" makes one.
--change applies a Dockerfile instruction to its config (CMD, ENTRYPOINT,
ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or STOPSIGNAL; repeatable), and
--message sets the comment of its history entry. The tar is streamed to the
daemon, which compresses and unpacks it as it arrives.`,
		Example: `  skiff image import hello.oci.tar
  skiff image import --rootfs debian.tar localhost/debian:bookworm --change 'CMD ["bash"]'
  tar -C rootfs -c . | skiff image import --rootfs - mybase --change 'ENV LANG=C.UTF-8'`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case rootfs && len(args) != 2:
				return errdefs.Invalid("import --rootfs takes a tar (or -) and a name: skiff image import --rootfs FILE|- NAME[:TAG]")
			case !rootfs && len(args) != 1:
				return errdefs.Invalid("import takes one archive or layout directory (or -); for a root filesystem tar use --rootfs FILE NAME[:TAG]")
			case !rootfs && (len(changes) > 0 || message != ""):
				return errdefs.Invalid("--change and --message apply to a root filesystem import: add --rootfs")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := importSource(g, args[0], !rootfs)
			if err != nil {
				return err
			}
			defer closeFn()
			if rootfs {
				img, err := g.client().ImportRootfs(cmd.Context(), r, api.ImageImportRootfsOptions{Ref: args[1], Changes: changes, Message: message})
				if err != nil {
					return err
				}
				printImported(g, []api.Image{img})
				return nil
			}
			imgs, err := g.client().ImportImage(cmd.Context(), r)
			if err != nil {
				return err
			}
			printImported(g, imgs)
			return nil
		},
	}
	c.Flags().BoolVar(&rootfs, "rootfs", false, "FILE is a root filesystem tar: make a one-layer image NAME[:TAG] of it")
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "with --rootfs: apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL)")
	c.Flags().StringVarP(&message, "message", "m", "", "with --rootfs: the comment of the image's history entry")
	return c
}

// importSource opens what import reads: stdin for "-", a file, or (when
// dirs is set) an OCI layout directory streamed as a tar.
func importSource(g *globals, path string, dirs bool) (io.Reader, func(), error) {
	if path == "-" {
		return g.stdin, func() {}, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, errdefs.Invalid("cannot import %s: %v", path, err)
	}
	if st.IsDir() {
		if !dirs {
			return nil, nil, errdefs.Invalid("%s is a directory: --rootfs takes a tar; make one with tar -C %s -c .", path, path)
		}
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err != nil {
			return nil, nil, errdefs.Invalid("%s is a directory but not an OCI image layout (it has no oci-layout file)", path)
		}
		return tarDir(path), func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// tarDir streams the regular files and directories under dir as a tar.
func tarDir(dir string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil || rel == "." {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() && !info.IsDir() {
				return nil
			}
			hdr, err := tar.FileInfoHeader(info, "")
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(rel)
			if info.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.IsDir() {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func newImagePullCmd(g *globals) *cobra.Command {
	var insecure bool
	var platform string
	c := &cobra.Command{
		Use:   "pull [flags] IMAGE",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := g.client().PullImage(cmd.Context(), api.ImagePullRequest{Ref: args[0], Insecure: insecure, Platform: platform})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Pulled %s\nDigest: %s\nImage ID: %s\n", strings.Join(img.Tags, ", "), img.Digest, shortID(img.ID))
			return nil
		},
	}
	c.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS (loopback registries always allow HTTP)")
	c.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pull from a multi-platform image (default linux/<this machine>)")
	return c
}

func newImagePushCmd(g *globals) *cobra.Command {
	var insecure bool
	c := &cobra.Command{
		Use:   "push [flags] IMAGE",
		Short: "Push an image to its registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().PushImage(cmd.Context(), api.ImagePullRequest{Ref: args[0], Insecure: insecure}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Pushed %s\n", args[0])
			return nil
		},
	}
	c.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS (loopback registries always allow HTTP)")
	return c
}

func newImageTagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().TagImage(cmd.Context(), args[0], args[1])
		},
	}
}

func newImageRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm [flags] IMAGE...",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove image names, and images left without a name",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachArg(g, args, func(ref string) error {
				res, err := g.client().RemoveImage(cmd.Context(), ref, force)
				if err != nil {
					return err
				}
				for _, u := range res.Untagged {
					fmt.Fprintln(g.stdout, "Untagged:", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintln(g.stdout, "Deleted:", d)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "untag even if containers use the image (they keep it)")
	return c
}

func newImagePruneCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete images without names, the build cache, and blobs and layers nothing uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := g.client().PruneImages(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Deleted %d blobs and %d unpacked layers\n", res.BlobsDeleted, res.LayersDeleted)
			if res.BuildCacheEntriesDeleted > 0 {
				fmt.Fprintf(g.stdout, "Deleted %d build cache entries\n", res.BuildCacheEntriesDeleted)
			}
			fmt.Fprintf(g.stdout, "Total reclaimed space: %s\n", humanSize(res.BytesFreed))
			return nil
		},
	}
}

func newImageBuildCmd(g *globals) *cobra.Command {
	var (
		opts      client.BuildOptions
		buildArgs []string
		file      string
		quiet     bool

		// Progress, the image ID file and labels.
		progress string
		iidfile  string
		labels   []string

		// RUN --mount=type=secret values.
		secrets []string // --secret id=ID,src=FILE|env=VAR
	)
	c := &cobra.Command{
		Use:   "build [flags] DIR",
		Short: "Build an image from a Dockerfile",
		Long: `Build an image from a Dockerfile and the build context DIR.

Supported: FROM (scratch or a local image), RUN (shell, exec and heredoc
forms, in a container on skiff's default network, or with --network none
on loopback only), RUN --mount=type=cache|secret|bind|tmpfs (BuildKit's
syntax), RUN --network=default|none, COPY (also --from a stage or an
image, --chown, --chmod), ADD (local files and tars), ENV, ARG, WORKDIR,
USER, EXPOSE, LABEL, CMD, ENTRYPOINT, STOPSIGNAL, multi-stage builds and
.dockerignore. Not yet: RUN --security, --network=host,
--mount=type=ssh, ADD of URLs and git sources, COPY --parents.

A secret (--secret) is read here and sent to the daemon in the request
body, apart from the context: RUN --mount=type=secret,id=ID sees it as
/run/secrets/ID (or target=, or env=VARIABLE); it is in no layer, history
or output.

Stages that do not need each other build at the same time (one per CPU,
two at least); a stage starts once the stages it is FROM or copies from are
built, and stages the target does not need are not built. A failing
step stops the whole build.

Progress goes to stderr. On a terminal (--progress tty, the default
there) each step shows its time and, while it runs, its last lines of
output, collapsed into one line when it succeeds and kept when it fails.
--progress plain (the default elsewhere, for logs and CI) prints every
step, output line and step end as a line starting with the step's
number, "#3 DONE 1.2s". The image's ID and names go to stdout; with -q
only its ID.

Steps whose inputs did not change are taken from the build cache and
shown CACHED; --no-cache builds every step. skiff builder prune empties
the cache.`,
		Example: `  CGO_ENABLED=0 go build -o examples/hello/hello ./examples/hello
  skiff image build -t hello examples/hello
  skiff image build -t app:1.4 -t app:latest --label org.opencontainers.image.revision=$(git rev-parse HEAD) .
  skiff image build -q --iidfile app.iid -t app --progress plain .
  skiff image build -t app --secret id=npmrc,src=$HOME/.npmrc --network none .`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if len(opts.Tags) == 0 {
				return withCode(125, errdefs.Invalid("give the image a name with -t NAME[:TAG]"))
			}
			dockerfile := "Dockerfile"
			if file != "" {
				rel, err := dockerfileInContext(dir, file)
				if err != nil {
					return withCode(125, err)
				}
				dockerfile = rel
			}
			opts.Dockerfile = dockerfile
			opts.BuildArgs = map[string]string{}
			for _, kv := range buildArgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					v, ok = os.LookupEnv(k)
					if !ok {
						continue
					}
				}
				opts.BuildArgs[k] = v
			}
			if err := checkProgressMode(progress); err != nil {
				return withCode(125, err)
			}
			sec, err := readBuildSecrets(secrets)
			if err != nil {
				return withCode(125, err)
			}
			opts.Secrets = sec
			lbls, err := parseLabels(labels)
			if err != nil {
				return withCode(125, err)
			}
			opts.Labels = lbls
			tr, err := buildcontext.Tar(dir, dockerfile)
			if err != nil {
				return withCode(125, err)
			}
			defer tr.Close()
			var show buildProgress
			if !quiet {
				p, err := newBuildProgress(progress, g.stderr)
				if err != nil {
					return withCode(125, err)
				}
				show = p
				opts.Events = p.event
			}
			res, err := g.client().BuildImage(cmd.Context(), tr, opts)
			if show != nil {
				show.finish(err != nil)
			}
			if err != nil {
				return err
			}
			if iidfile != "" {
				if err := os.WriteFile(iidfile, []byte(res.ID), 0o644); err != nil {
					return fmt.Errorf("writing the image ID to --iidfile: %w", err)
				}
			}
			if quiet {
				fmt.Fprintln(g.stdout, res.ID)
				return nil
			}
			for _, t := range res.Tags {
				fmt.Fprintf(g.stdout, "Successfully tagged %s\n", t)
			}
			fmt.Fprintf(g.stdout, "Image ID: %s\n", shortID(res.ID))
			return nil
		},
	}
	c.Flags().StringArrayVarP(&opts.Tags, "tag", "t", nil, "name the image NAME[:TAG] (repeatable)")
	c.Flags().StringVarP(&file, "file", "f", "", "Dockerfile to use (default DIR/Dockerfile); must be inside DIR")
	c.Flags().StringArrayVar(&buildArgs, "build-arg", nil, "set a build argument KEY=VALUE")
	c.Flags().StringVar(&opts.Target, "target", "", "build this stage (default: the last)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image ID, no progress")
	c.Flags().StringVar(&progress, "progress", progressAuto, "how to show progress: auto (tty on a terminal, else plain), plain or tty")
	c.Flags().StringVar(&iidfile, "iidfile", "", "write the image ID to this file")
	c.Flags().StringArrayVar(&labels, "label", nil, "set a label KEY=VALUE in the image (repeatable)")
	// The layer cache.
	c.Flags().BoolVar(&opts.NoCache, "no-cache", false, "build every step again, ignoring the build cache")
	c.Flags().BoolVar(&opts.Pull, "pull", false, "pull FROM images from their registries first (except localhost/ names), rather than use the local copies")
	// RUN --mount=type=secret values and the network of RUN steps.
	c.Flags().StringArrayVar(&secrets, "secret", nil, "give RUN --mount=type=secret a secret: id=ID,src=FILE or id=ID,env=VARIABLE (repeatable)")
	c.Flags().StringVar(&opts.Network, "network", "default", "network of RUN steps: default (skiff's default network) or none (loopback only)")
	return c
}

// readBuildSecrets reads the values of --secret flags, as docker buildx
// takes them: id=ID with src=FILE (also source=, type=file) or
// env=VARIABLE (also type=env); with neither, the variable named ID.
func readBuildSecrets(specs []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, spec := range specs {
		var id, src, env, typ string
		for _, field := range strings.Split(spec, ",") {
			k, v, ok := strings.Cut(field, "=")
			if !ok {
				return nil, errdefs.Invalid("--secret %s: %q is not KEY=VALUE: write id=ID,src=FILE or id=ID,env=VARIABLE", spec, field)
			}
			switch strings.ToLower(k) {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "env":
				env = v
			case "type":
				if v != "file" && v != "env" {
					return nil, errdefs.Invalid("--secret %s: type=%s is not known: use type=file or type=env", spec, v)
				}
				typ = v
			default:
				return nil, errdefs.Invalid("--secret %s: unknown key %q: use id=, src= or env=", spec, k)
			}
		}
		if typ == "env" && env == "" {
			env, src = src, ""
		}
		if id == "" {
			return nil, errdefs.Invalid("--secret %s: the secret has no id: add id=ID (the id RUN --mount=type=secret,id=ID names)", spec)
		}
		if err := api.CheckBuildSecretID(id); err != nil {
			return nil, fmt.Errorf("--secret %s: %w", spec, err)
		}
		if src != "" && env != "" {
			return nil, errdefs.Invalid("--secret %s: give src= or env=, not both", spec)
		}
		if src == "" && env == "" {
			env = id
		}
		if src != "" {
			data, err := os.ReadFile(src)
			if err != nil {
				return nil, errdefs.Invalid("--secret %s: %v", spec, err)
			}
			out[id] = data
		} else {
			v, ok := os.LookupEnv(env)
			if !ok {
				return nil, errdefs.Invalid("--secret %s: the environment variable %s is not set", spec, env)
			}
			out[id] = []byte(v)
		}
		if len(out[id]) > api.MaxBuildSecretSize {
			return nil, errdefs.Invalid("--secret %s: the value is larger than %d bytes", spec, api.MaxBuildSecretSize)
		}
	}
	return out, nil
}

// dockerfileInContext returns file's path relative to the context dir.
func dockerfileInContext(dir, file string) (string, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absFile, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(absFile); err != nil {
		// Relative to the context, as docker also accepts.
		if _, err2 := os.Stat(filepath.Join(absDir, file)); err2 == nil {
			absFile = filepath.Join(absDir, file)
		} else {
			return "", errdefs.Invalid("Dockerfile %s: %v", file, err)
		}
	}
	rel, err := filepath.Rel(absDir, absFile)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", errdefs.Invalid("Dockerfile %s is outside the build context %s: move it into the context", file, dir)
	}
	return rel, nil
}
