package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func newPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PORT[/PROTO]]",
		Short: "List a container's published ports, or the host address of one",
		Long: `Lists the container's published ports as CONTAINER_PORT/PROTO -> HOST_IP:HOST_PORT,
with the host ports chosen while it runs; with PORT, prints only its host
addresses (PROTO defaults to tcp), as docker port does.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			want, proto := 0, ""
			if len(args) == 2 {
				p, pr, _ := strings.Cut(args[1], "/")
				n, err := strconv.Atoi(p)
				if err != nil || n < 1 || n > 65535 {
					return withCode(125, errdefs.Invalid("port %q: give a container port number, like 80 or 53/udp", args[1]))
				}
				if pr == "" {
					pr = "tcp"
				}
				if pr != "tcp" && pr != "udp" {
					return withCode(125, errdefs.Invalid("port %q: the protocol is tcp or udp", args[1]))
				}
				want, proto = n, pr
			}
			c, err := g.client().Container(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ports := c.Config.Ports
			if c.NetworkSettings != nil && len(c.NetworkSettings.Ports) > 0 {
				ports = c.NetworkSettings.Ports
			}
			found := false
			for _, p := range ports {
				pr := p.Protocol
				if pr == "" {
					pr = "tcp"
				}
				host := hostAddr(p)
				switch {
				case want == 0:
					fmt.Fprintf(g.stdout, "%d/%s -> %s\n", p.ContainerPort, pr, host)
				case p.ContainerPort == want && pr == proto:
					fmt.Fprintln(g.stdout, host)
					found = true
				}
			}
			if want != 0 && !found {
				return errdefs.NotFound("no public port '%d/%s' published for %s", want, proto, args[0])
			}
			return nil
		},
	}
}

// hostAddr is a published port's host side, HOST_IP:HOST_PORT.
func hostAddr(p api.PortMapping) string {
	ip := p.HostIP
	if ip == "" {
		ip = api.DefaultHostIP
	}
	port := "0"
	if p.HostPort != 0 {
		port = strconv.Itoa(p.HostPort)
	}
	return ip + ":" + port
}
