package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newBuilderCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "builder",
		Short: "Manage the build cache",
	}
	c.AddCommand(newBuilderPruneCmd(g))
	return c
}

func newBuilderPruneCmd(g *globals) *cobra.Command {
	var (
		all       bool
		olderThan time.Duration
	)
	c := &cobra.Command{
		Use:   "prune [flags]",
		Short: "Empty the build cache",
		Long: `Remove the build cache: the results of build steps kept to skip them in
later builds, and the RUN --mount=type=cache directories. With --older-than,
only what no build used for that long.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if olderThan < 0 {
				return withCode(125, fmt.Errorf("--older-than %s is negative: give a duration such as 24h", olderThan))
			}
			if all && olderThan > 0 {
				return withCode(125, fmt.Errorf("--all and --older-than contradict each other: give one"))
			}
			res, err := g.client().PruneBuildCache(cmd.Context(), olderThan)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Deleted %d build cache entries and %d cache mounts\nTotal reclaimed space: %s\n",
				res.EntriesDeleted, res.MountsDeleted, humanSize(res.BytesFreed))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove the whole cache (the default)")
	c.Flags().DurationVar(&olderThan, "older-than", 0, "remove only what no build used for this long (e.g. 24h)")
	return c
}
