package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet bool
	var output string
	c := &cobra.Command{
		Use:     "ps",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outWide, outJSON, outYAML); err != nil {
				return err
			}
			cs, err := g.client().Containers(cmd.Context(), all)
			if err != nil {
				return err
			}
			if output == outJSON || output == outYAML {
				return printStructured(g.stdout, output, cs)
			}
			if quiet {
				for _, c := range cs {
					fmt.Fprintln(g.stdout, shortID(c.ID))
				}
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			if output == outWide {
				fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPID\tRESTARTS\tLIMITS\tNAMES")
			} else {
				fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
			}
			for _, c := range cs {
				cmdline := fmt.Sprintf("%q", truncate(quoteCommand(c.Process), 20))
				if output == outWide {
					pid := ""
					if c.State.Pid > 0 {
						pid = fmt.Sprint(c.State.Pid)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortID(c.ID), c.Config.Image, quoteCommand(c.Process),
						ago(c.Created, now), statusText(c.State, now), pid, c.State.RestartCount, limitsText(c.Config.Resources), c.Name)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(c.ID), c.Config.Image, cmdline,
					ago(c.Created, now), statusText(c.State, now), c.Name)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default: running ones)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only container IDs")
	addOutputFlag(c, &output, outWide, outJSON, outYAML)
	return c
}
