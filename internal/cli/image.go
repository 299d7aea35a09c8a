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
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image/build"
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
			failed := false
			for _, ref := range args {
				res, err := g.client().RemoveImage(cmd.Context(), ref, force)
				if err != nil {
					fmt.Fprintln(g.stderr, "Error:", err)
					failed = true
					continue
				}
				for _, u := range res.Untagged {
					fmt.Fprintln(g.stdout, "Untagged:", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintln(g.stdout, "Deleted:", d)
				}
			}
			if failed {
				return withCode(1, nil)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "untag even if containers use the image (they keep it)")
	return c
}

func newImagePruneCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete images without names, and blobs and layers nothing uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := g.client().PruneImages(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Deleted %d blobs and %d unpacked layers\nTotal reclaimed space: %s\n", res.BlobsDeleted, res.LayersDeleted, humanSize(res.BytesFreed))
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
	)
	c := &cobra.Command{
		Use:   "build [flags] DIR",
		Short: "Build an image from a Dockerfile",
		Long: `Build an image from a Dockerfile and the build context DIR.

Supported: FROM (scratch or a local image), RUN (shell, exec and heredoc
forms, in a container without network), COPY (also --from a stage or an
image, --chown, --chmod), ADD (local files and tars), ENV, ARG, WORKDIR,
USER, EXPOSE, LABEL, CMD, ENTRYPOINT, STOPSIGNAL, multi-stage builds and
.dockerignore. Not yet: RUN --mount and --security, RUN --network other
than none, ADD of URLs and git sources, COPY --parents.`,
		Example: `  CGO_ENABLED=0 go build -o examples/hello/hello ./examples/hello
  skiff image build -t hello examples/hello`,
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
			if !quiet {
				opts.Progress = func(line string) { fmt.Fprintln(g.stderr, line) }
			}
			tr, err := build.ContextTar(dir, dockerfile)
			if err != nil {
				return withCode(125, err)
			}
			defer tr.Close()
			res, err := g.client().BuildImage(cmd.Context(), tr, opts)
			if err != nil {
				return err
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
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image ID")
	return c
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
