package cli

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
)

func newVersionCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the client's and the daemon's versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			client := api.VersionInfo{Version: Version, APIVersion: api.Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			server, serr := g.client().Version(cmd.Context())
			if output != "" {
				v := map[string]any{"client": client}
				if serr == nil {
					v["server"] = server
				}
				return printStructured(g.stdout, output, v)
			}
			fmt.Fprintf(g.stdout, "Client:\n Version:     %s\n API version: %s\n Go version:  %s\n OS/Arch:     %s/%s\n",
				client.Version, client.APIVersion, client.GoVersion, client.OS, client.Arch)
			if serr != nil {
				return serr
			}
			fmt.Fprintf(g.stdout, "\nServer:\n Version:     %s\n API version: %s\n Go version:  %s\n OS/Arch:     %s/%s\n",
				server.Version, server.APIVersion, server.GoVersion, server.OS, server.Arch)
			return nil
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func newInfoCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "info",
		Short: "Show the daemon's runtime, storage and counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			info, err := g.client().Info(cmd.Context())
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, info)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 1, ' ', 0)
			for _, row := range [][2]string{
				{"Version", info.Version},
				{"Root", info.Root},
				{"Socket", info.Socket},
				{"Ingress", info.IngressAddr},
				{"Ingress HTTPS", orNone(info.IngressTLSAddr)},
				{"Local CA", orNone(info.CAFile)},
				{"Runtime", fmt.Sprintf("%s %s (%s)", info.Runtime, info.RuntimeVersion, info.RuntimePath)},
				{"Monitor", fmt.Sprintf("%s %s", info.Monitor, info.MonitorVersion)},
				{"Cgroups", info.CgroupLayout},
				{"Kernel", info.Kernel},
				{"Containers", fmt.Sprintf("%d (%d running)", info.Containers, info.ContainersRunning)},
				{"Images", fmt.Sprint(info.Images)},
				{"Build cache", humanSize(info.BuildCacheSize)},
			} {
				fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
			}
			return tw.Flush()
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

// orNone shows an unset value as "none".
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
