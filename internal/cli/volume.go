package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
)

func newVolumeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "volume",
		Short: "Manage named volumes: create, list, inspect, remove, prune",
		Long: `Manage named volumes, the directories containers mount with
-v NAME:/path. A volume is made on first use or by create, keeps its data
across container removal and daemon restarts, and goes only with rm or
prune; rm refuses a volume a container (running or not) uses.`,
	}
	c.AddCommand(newVolumeCreateCmd(g), newVolumeLsCmd(g), newVolumeInspectCmd(g), newVolumeRmCmd(g), newVolumePruneCmd(g))
	return c
}

func newVolumeCreateCmd(g *globals) *cobra.Command {
	var labels []string
	c := &cobra.Command{
		Use:   "create [flags] NAME",
		Short: "Create a named volume",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLabels(labels)
			if err != nil {
				return withCode(125, err)
			}
			v, err := g.client().CreateVolume(cmd.Context(), api.VolumeCreateRequest{Name: args[0], Labels: l})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, v.Name)
			return nil
		},
	}
	c.Flags().StringArrayVarP(&labels, "label", "l", nil, "set a label KEY=VALUE")
	return c
}

func newVolumeLsCmd(g *globals) *cobra.Command {
	var quiet bool
	var output string
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List named volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			vols, err := g.client().Volumes(cmd.Context())
			if err != nil {
				return err
			}
			if output != outTable {
				return printStructured(g.stdout, output, vols)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(tw, "NAME\tUSED BY")
			}
			for _, v := range vols {
				if quiet {
					fmt.Fprintln(tw, v.Name)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\n", v.Name, strings.Join(v.UsedBy, ","))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func newVolumeInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show named volumes as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out []api.Volume
			for _, n := range args {
				v, err := g.client().Volume(cmd.Context(), n)
				if err != nil {
					return err
				}
				out = append(out, v)
			}
			return printStructured(g.stdout, outJSON, out)
		},
	}
}

func newVolumeRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove named volumes and their data (refused while a container uses one)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachArg(g, args, func(n string) error {
				if err := g.client().RemoveVolume(cmd.Context(), n); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, n)
				return nil
			})
		},
	}
}

func newVolumePruneCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove the named volumes no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := g.client().PruneVolumes(cmd.Context())
			if err != nil {
				return err
			}
			for _, n := range res.Deleted {
				fmt.Fprintln(g.stdout, "Deleted", n)
			}
			return nil
		},
	}
}
