package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// imageText is the IMAGE column: the name the user gave, or a short ID.
func imageText(c api.Container) string {
	if strings.HasPrefix(c.Config.Image, "sha256:") {
		return shortID(c.Config.Image)
	}
	return c.Config.Image
}

// portsText is the PORTS column: the published ports, with the host
// ports chosen while the container runs.
func portsText(c api.Container) string {
	ports := c.Config.Ports
	if c.NetworkSettings != nil && len(c.NetworkSettings.Ports) > 0 {
		ports = c.NetworkSettings.Ports
	}
	var out []string
	for _, p := range ports {
		out = append(out, api.FormatPort(p))
	}
	return strings.Join(out, ", ")
}

var containerTable = table[api.Container]{
	header:     "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES",
	wideHeader: "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tIP\tPID\tRESTARTS\tLIMITS\tNAMES",
	id:         func(c api.Container) string { return c.ID },
	rows: func(w io.Writer, c api.Container, wide bool, now time.Time) {
		if !wide {
			fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", shortID(c.ID), imageText(c), truncate(quoteCommand(c.Process), 20),
				ago(c.Created, now), statusText(c.State, now), portsText(c), c.Name)
			return
		}
		pid := ""
		if c.State.Pid > 0 {
			pid = fmt.Sprint(c.State.Pid)
		}
		ip := ""
		if c.NetworkSettings != nil {
			ip = c.NetworkSettings.IP
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortID(c.ID), imageText(c), quoteCommand(c.Process),
			ago(c.Created, now), statusText(c.State, now), portsText(c), ip, pid, c.State.RestartCount, limitsText(c.Config.Resources), c.Name)
	},
}

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet bool
	var output, format string
	var filters []string
	c := &cobra.Command{
		Use:     "ps",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outWide, outJSON, outYAML); err != nil {
				return err
			}
			if format != "" && output != "" {
				return withCode(125, errdefs.Invalid("--format and --output contradict each other: give one"))
			}
			f, err := parsePsFilter(filters)
			if err != nil {
				return withCode(125, err)
			}
			all := all || f.needsAll()
			list, err := g.client().Containers(cmd.Context(), all)
			if err != nil {
				return err
			}
			var cs []api.Container
			for _, c := range list {
				if f.match(c) {
					cs = append(cs, c)
				}
			}
			if format != "" && !quiet {
				rows := make([]psRow, len(cs))
				now := time.Now()
				for i, c := range cs {
					rows[i] = psRow{c: c, now: now}
				}
				if format == "json" {
					return printFormat(g.stdout, format, cs)
				}
				return printFormat(g.stdout, format, rows)
			}
			return containerTable.print(g.stdout, output, quiet, cs)
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default: running ones)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only container IDs")
	addOutputFlag(c, &output, outWide, outJSON, outYAML)
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "show only containers that match KEY=VALUE: "+strings.Join(psFilterKeys, ", ")+" (repeatable)")
	c.Flags().StringVar(&format, "format", "", "print each container through a Go template (docker's fields: .ID .Names .Image .Command .Status .State .Ports .Labels .Networks ...), 'table TEMPLATE' or json")
	return c
}
