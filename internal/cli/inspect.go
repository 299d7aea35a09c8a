package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api/errdefs"
)

func newInspectCmd(g *globals) *cobra.Command {
	var output, kind, format string
	c := &cobra.Command{
		Use:   "inspect [flags] NAME...",
		Short: "Show containers or images in detail (JSON by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			if format != "" && output != "" {
				return withCode(125, errdefs.Invalid("--format and --output contradict each other: give one"))
			}
			cl := g.client()
			var out []any
			for _, n := range args {
				if kind != "image" {
					c, err := cl.Container(cmd.Context(), n)
					if err == nil {
						out = append(out, c)
						continue
					}
					if kind == "container" || !errors.Is(err, errdefs.ErrNotFound) {
						return err
					}
				}
				img, err := cl.Image(cmd.Context(), n)
				if err != nil {
					if errors.Is(err, errdefs.ErrNotFound) && kind == "" {
						return errdefs.NotFound("no container or image named %q", n)
					}
					return err
				}
				out = append(out, img)
			}
			if format != "" {
				return printFormat(g.stdout, format, out)
			}
			return printStructured(g.stdout, output, out)
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	c.Flags().StringVarP(&format, "format", "f", "", "print each object through a Go template, like '{{.State.Status}}' or '{{json .Config}}' (fields as in the JSON, Go-cased)")
	c.Flags().StringVar(&kind, "type", "", "only look for a container or an image")
	return c
}
