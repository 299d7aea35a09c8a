package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/cli/compose"
)

func newComposeTopCmd(g *globals, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Show the processes of the project's running containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			for _, name := range args {
				if _, err := p.GetService(name); err != nil {
					return withCode(1, fmt.Errorf("no such service %q in the project", name))
				}
			}
			cs, err := g.engine().Containers(cmd.Context(), p.Name, false)
			if err != nil {
				return err
			}
			slices.SortFunc(cs, func(a, b api.Container) int { return strings.Compare(a.Name, b.Name) })
			first := true
			for _, c := range cs {
				if c.State.Status != api.StatusRunning || len(args) > 0 && !slices.Contains(args, c.Config.Labels[compose.LabelService]) {
					continue
				}
				top, err := g.client().Top(cmd.Context(), c.ID)
				if err != nil {
					continue // stopped meanwhile
				}
				if !first {
					fmt.Fprintln(g.stdout)
				}
				first = false
				fmt.Fprintln(g.stdout, c.Name)
				tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
				for _, row := range top.Processes {
					fmt.Fprintln(tw, strings.Join(row, "\t"))
				}
				tw.Flush()
			}
			return nil
		},
	}
}
