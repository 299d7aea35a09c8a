package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/daemon"
)

// newRegistryCmd manages the built-in registry's users. Like the daemon
// command it works on the state directory itself, so it runs on the
// daemon's host with access to --root.
func newRegistryCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "registry",
		Short: "Manage the built-in registry (skiff daemon --registry-addr)",
	}
	var root string
	usersFile := func() string { return daemon.RegistryUsersPath(root) }
	user := &cobra.Command{Use: "user", Short: "Manage the users who may push to and pull from the registry"}
	user.PersistentFlags().StringVar(&root, "root", daemon.DefaultRoot, "the daemon's state directory")
	user.AddCommand(&cobra.Command{
		Use:   "add NAME",
		Short: "Add a user, or change their password; the password is read from standard input",
		Long: `Add a registry user, or change the password of one, reading the password
from the first line of standard input:

  echo "$PASSWORD" | skiff registry user add ci

The password is stored as a bcrypt hash in ROOT/registry/htpasswd (the
htpasswd format), which the daemon rereads when it changes. Clients log
in with basic auth: docker login, skopeo --creds, crane auth login.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			line, err := bufio.NewReader(g.stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("read the password from standard input: %w", err)
			}
			if err := daemon.SetRegistryUser(root, args[0], strings.TrimRight(line, "\r\n")); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "registry user %s saved in %s\n", args[0], usersFile())
			return nil
		},
	})
	user.AddCommand(&cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := daemon.RemoveRegistryUser(root, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "registry user %s removed\n", args[0])
			return nil
		},
	})
	user.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			users, err := daemon.RegistryUsers(root)
			if err != nil {
				return fmt.Errorf("read the registry users: %w (add one with skiff registry user add NAME)", err)
			}
			for _, u := range users {
				fmt.Fprintln(g.stdout, u)
			}
			return nil
		},
	})
	c.AddCommand(user)
	return c
}
