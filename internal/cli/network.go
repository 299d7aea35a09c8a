package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func newNetworkCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "network",
		Short: "Manage networks: create, list, inspect, remove, connect, disconnect",
		Long: `Manage the networks containers join with --network.

The daemon makes the default network "skiff" at start. Containers on one
network reach each other by name through its DNS server; different
networks cannot reach each other. A container joins further networks
with connect, and then reaches the containers of each by name. See
docs/networking.md.`,
	}
	c.AddCommand(newNetworkCreateCmd(g), newNetworkLsCmd(g), newNetworkInspectCmd(g), newNetworkRmCmd(g),
		newNetworkConnectCmd(g), newNetworkDisconnectCmd(g))
	return c
}

func newNetworkCreateCmd(g *globals) *cobra.Command {
	var (
		req       api.NetworkCreateRequest
		labels    []string
		cniConfig string
	)
	c := &cobra.Command{
		Use:   "create [flags] NAME",
		Short: "Create a network",
		Long: `Create a bridge network (set up by skiff, with a subnet picked from
10.89.0.0/16 unless --subnet is given), or with --cni-config a network run
by the CNI plugins of a configuration list.`,
		Example: `  skiff network create shop
  skiff network create --subnet 10.90.0.0/24 --label team=web shop
  skiff network create --internal backend
  skiff network create --cni-config ./mynet.conflist plugins`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			var err error
			if req.Labels, err = parseLabels(labels); err != nil {
				return withCode(125, err)
			}
			if cniConfig != "" {
				data, err := os.ReadFile(cniConfig)
				if err != nil {
					return withCode(125, errdefs.Invalid("read the CNI configuration: %v", err))
				}
				req.CNIConfig = string(data)
			}
			n, err := g.client().CreateNetwork(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, n.ID)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&req.Subnet, "subnet", "", "subnet in CIDR form, like 10.90.0.0/24 (default: a free /24 of 10.89.0.0/16)")
	fl.BoolVar(&req.Internal, "internal", false, "no traffic out of the host: containers reach only each other")
	fl.StringArrayVarP(&labels, "label", "l", nil, "set a label KEY=VALUE")
	fl.StringVar(&cniConfig, "cni-config", "", "make a CNI network from this configuration list (JSON file)")
	return c
}

var networkTable = table[api.Network]{
	header:     "NETWORK ID\tNAME\tDRIVER\tSUBNET\tINTERNAL\tCONTAINERS",
	wideHeader: "NETWORK ID\tNAME\tDRIVER\tSUBNET\tGATEWAY\tBRIDGE\tINTERNAL\tCONTAINERS\tCREATED\tLABELS",
	id:         func(n api.Network) string { return n.ID },
	rows: func(w io.Writer, n api.Network, wide bool, now time.Time) {
		internal := ""
		if n.Internal {
			internal = "yes"
		}
		if wide {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortID(n.ID), n.Name, n.Driver, n.Subnet, n.Gateway, n.Bridge,
				internal, len(n.Containers), ago(n.Created, now), labelsText(n.Labels))
			return
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", shortID(n.ID), n.Name, n.Driver, n.Subnet, internal, len(n.Containers))
	},
}

func newNetworkLsCmd(g *globals) *cobra.Command {
	var output string
	var quiet bool
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outWide, outJSON, outYAML); err != nil {
				return err
			}
			nets, err := g.client().Networks(cmd.Context())
			if err != nil {
				return err
			}
			return networkTable.print(g.stdout, output, quiet, nets)
		},
	}
	addOutputFlag(c, &output, outWide, outJSON, outYAML)
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only network IDs")
	return c
}

// labelsText renders labels as sorted k=v pairs.
func labelsText(labels map[string]string) string {
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func newNetworkInspectCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "inspect [flags] NETWORK...",
		Short: "Show networks in detail, with their containers (JSON by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			out := []api.Network{}
			for _, name := range args {
				n, err := g.client().Network(cmd.Context(), name)
				if err != nil {
					return err
				}
				out = append(out, n)
			}
			return printStructured(g.stdout, output, out)
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func newNetworkRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK...",
		Aliases: []string{"remove"},
		Short:   "Remove networks (their containers must be removed first)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachArg(g, args, func(name string) error {
				if err := g.client().RemoveNetwork(cmd.Context(), name); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, name)
				return nil
			})
		},
	}
}

func newNetworkConnectCmd(g *globals) *cobra.Command {
	var aliases []string
	var ip string
	c := &cobra.Command{
		Use:   "connect [flags] NETWORK CONTAINER",
		Short: "Join a container to one more network",
		Long: `Join a container to one more bridge network, with its own interface
(eth1, eth2, ...), address and DNS aliases there. A running container joins
at once; the network stays in the container's config for its next starts.`,
		Example: `  skiff network connect backend web
  skiff network connect --alias api backend web
  skiff network connect --ip 10.89.1.20 backend web`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().ConnectNetwork(cmd.Context(), args[0], api.NetworkConnectRequest{Container: args[1], Aliases: aliases, IP: ip})
		},
	}
	c.Flags().StringArrayVar(&aliases, "alias", nil, "another DNS name of the container on this network (repeatable)")
	c.Flags().StringVar(&ip, "ip", "", "the container's IPv4 address on this network (default: the next free one)")
	return c
}

func newNetworkDisconnectCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "disconnect [flags] NETWORK CONTAINER",
		Short: "Take a container off one of the networks it joined with connect",
		Long: `Take a container off one of its further networks, at once if it runs,
and out of its config. A container's first network (--network) cannot be
disconnected.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().DisconnectNetwork(cmd.Context(), args[0], api.NetworkDisconnectRequest{Container: args[1], Force: force})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "succeed when the container is not on the network")
	return c
}
