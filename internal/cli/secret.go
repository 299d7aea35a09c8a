package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func newSecretCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "secret",
		Short: "Manage secrets: create, set, get, list, inspect, remove, rotate-key",
		Long: `Manage secrets: named sets of KEY=VALUE pairs that Apps read in their env
(secretRef: NAME/KEY). Values are encrypted at rest; only "secret get
--reveal" shows them. Every write makes a new version, and the Apps using
the secret roll out a new revision. See docs/secrets.md.`,
	}
	c.AddCommand(newSecretWriteCmd(g, true), newSecretWriteCmd(g, false), newSecretGetCmd(g),
		newSecretLsCmd(g), newSecretInspectCmd(g), newSecretRmCmd(g), newSecretRotateKeyCmd(g))
	return c
}

// secretSources are the flags that give a secret's content.
type secretSources struct {
	literals, files, envFiles []string
}

func (s *secretSources) addFlags(c *cobra.Command) {
	fl := c.Flags()
	fl.StringArrayVar(&s.literals, "from-literal", nil, "a KEY=VALUE pair")
	fl.StringArrayVar(&s.files, "from-file", nil, "KEY=PATH: the file's content as KEY's value (PATH alone: the file's name is the key)")
	fl.StringArrayVar(&s.envFiles, "from-env-file", nil, "a file of KEY=VALUE lines (# comments and blank lines skipped)")
}

// data reads the content the flags give; a key given twice is an error.
func (s *secretSources) data() (map[string][]byte, error) {
	out := map[string][]byte{}
	put := func(k string, v []byte, from string) error {
		if _, dup := out[k]; dup {
			return errdefs.Invalid("key %s is given twice (again by %s)", k, from)
		}
		out[k] = v
		return nil
	}
	for _, kv := range s.literals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, errdefs.Invalid("invalid --from-literal %q: use KEY=VALUE", kv)
		}
		if err := put(k, []byte(v), "--from-literal"); err != nil {
			return nil, err
		}
	}
	for _, kp := range s.files {
		k, p, ok := strings.Cut(kp, "=")
		if !ok {
			k, p = filepath.Base(kp), kp
		}
		if k == "" || p == "" {
			return nil, errdefs.Invalid("invalid --from-file %q: use KEY=PATH or PATH", kp)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, errdefs.Invalid("read --from-file %s: %v", p, err)
		}
		if err := put(k, b, "--from-file "+p); err != nil {
			return nil, err
		}
	}
	for _, f := range s.envFiles {
		kvs, err := parseEnvFile(f)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			if err := put(k, []byte(v), "--from-env-file "+f); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, errdefs.Invalid("no content: give --from-literal KEY=VALUE, --from-file KEY=PATH or --from-env-file FILE")
	}
	return out, nil
}

// newSecretWriteCmd makes "secret create" (create) or "secret set".
func newSecretWriteCmd(g *globals, create bool) *cobra.Command {
	var src secretSources
	c := &cobra.Command{
		Use:   "create [flags] NAME",
		Short: "Create a secret",
		Example: `  skiff secret create db --from-literal password=s3cr3t --from-literal user=shop
  skiff secret create tls --from-file cert.pem --from-file key=./key.pem
  skiff secret create shop-env --from-env-file .env`,
		Args: cobra.ExactArgs(1),
	}
	if !create {
		c.Use, c.Short = "set [flags] NAME", "Write a new version of a secret: the Apps using it roll out"
		c.Long = `Write a new version of a secret. The flags give its whole content: keys
not given are not in the new version. Every App whose env uses the secret
rolls out a new revision with the new values.`
		c.Example = `  skiff secret set db --from-literal password=n3w --from-literal user=shop`
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		data, err := src.data()
		if err != nil {
			return withCode(125, err)
		}
		var sec api.Secret
		if create {
			sec, err = g.client().CreateSecret(cmd.Context(), args[0], data)
		} else {
			sec, err = g.client().SetSecret(cmd.Context(), args[0], data)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "secret %s version %d (%s)\n", sec.Name, sec.Version, strings.Join(sec.Keys, ", "))
		return nil
	}
	src.addFlags(c)
	return c
}

func newSecretGetCmd(g *globals) *cobra.Command {
	var output string
	var reveal bool
	c := &cobra.Command{
		Use:   "get [flags] NAME",
		Short: "Show a secret's keys and version; with --reveal its values",
		Long: `Show a secret's version and keys. With --reveal, print its values as
KEY=VALUE lines (or as JSON with -o json: values base64-encoded).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			if !reveal {
				sec, err := g.client().Secret(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				sec.Versions, sec.UsedBy = nil, nil
				if output != "" {
					return printStructured(g.stdout, output, sec)
				}
				fmt.Fprintf(g.stdout, "secret %s version %d\nkeys: %s\n", sec.Name, sec.Version, strings.Join(sec.Keys, ", "))
				return nil
			}
			vals, err := g.client().RevealSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, vals)
			}
			keys := make([]string, 0, len(vals.Data))
			for k := range vals.Data {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(g.stdout, "%s=%s\n", k, vals.Data[k])
			}
			return nil
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	c.Flags().BoolVar(&reveal, "reveal", false, "print the values")
	return c
}

var secretTable = table[api.Secret]{
	header:     "NAME\tVERSION\tKEYS\tUPDATED",
	wideHeader: "NAME\tVERSION\tKEYS\tCREATED\tUPDATED",
	id:         func(s api.Secret) string { return s.Name },
	rows: func(w io.Writer, s api.Secret, wide bool, now time.Time) {
		if wide {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Version, strings.Join(s.Keys, ","), ago(s.Created, now), ago(s.Updated, now))
			return
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", s.Name, s.Version, strings.Join(s.Keys, ","), ago(s.Updated, now))
	},
}

func newSecretLsCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List secrets (names, versions and keys, never values)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outWide, outJSON, outYAML); err != nil {
				return err
			}
			secs, err := g.client().Secrets(cmd.Context())
			if err != nil {
				return err
			}
			return secretTable.print(g.stdout, output, false, secs)
		},
	}
	addOutputFlag(c, &output, outWide, outJSON, outYAML)
	return c
}

func newSecretInspectCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "inspect [flags] NAME...",
		Short: "Show secrets in detail: keys, versions, the Apps using them (JSON by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			out := []api.Secret{}
			for _, name := range args {
				s, err := g.client().Secret(cmd.Context(), name)
				if err != nil {
					return err
				}
				out = append(out, s)
			}
			return printStructured(g.stdout, output, out)
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func newSecretRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove secrets and all their versions (refused while an App uses one)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachArg(g, args, func(name string) error {
				if err := g.client().RemoveSecret(cmd.Context(), name); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, name)
				return nil
			})
		},
	}
}

func newSecretRotateKeyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Replace the daemon's secrets key file with a new one",
		Long: `Replace the key file that seals the secrets' data key (ROOT/secrets.key)
with a new random one. The old key file no longer opens the secrets: back
up the new one. The secrets' values and versions do not change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().RotateSecretsKey(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "the secrets key file was replaced: back up the new ROOT/secrets.key now; the old one no longer opens the secrets")
			return nil
		},
	}
}
