package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api/policy"
)

// Exit codes of skiff policy check.
const (
	policyRefused  = 1 // at least one App is refused
	policyBadInput = 2 // a manifest, the policy file or the profile is wrong
)

func newPolicyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Check objects against the admission policy",
	}
	c.AddCommand(newPolicyCheckCmd(g))
	return c
}

// newPolicyCheckCmd runs the daemon's admission checks offline: the
// checker is the package api/policy the daemon uses, so no daemon is
// needed and CI can run it.
func newPolicyCheckCmd(g *globals) *cobra.Command {
	var file, rulesFile, profile string
	c := &cobra.Command{
		Use:   "check -f FILE [--policy RULES] [--profile P]",
		Short: "Check App manifests against a security profile and custom rules, without a daemon",
		Long: `Check App manifests against a security profile and custom rules, without a daemon.

The checks are the daemon's own (see docs/policy.md). Exit status: 0 when
every App is allowed, 1 when one is refused (each refusal names the rule,
the field and the fix), 2 when a manifest, the policy file or the profile
is wrong.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return withCode(policyBadInput, fmt.Errorf("give the manifests to check with -f FILE"))
			}
			p, err := policy.ParseProfile(profile)
			if err != nil {
				return withCode(policyBadInput, fmt.Errorf("--profile: %w", err))
			}
			chk := &policy.Checker{Profile: p}
			if rulesFile != "" {
				data, err := os.ReadFile(rulesFile)
				if err != nil {
					return withCode(policyBadInput, fmt.Errorf("--policy: %w", err))
				}
				if chk.Rules, err = policy.ParseRules(rulesFile, data); err != nil {
					return withCode(policyBadInput, err)
				}
			}
			apps, err := readManifests(g, file)
			if err != nil {
				return withCode(policyBadInput, err)
			}
			refused := 0
			for _, a := range apps {
				if err := chk.App(a); err != nil {
					refused++
					fmt.Fprintln(g.stdout, err)
					continue
				}
				fmt.Fprintf(g.stdout, "App %s allowed (profile %s)\n", a.Metadata.Name, chk.AppProfile(a))
			}
			if refused > 0 {
				return withCode(policyRefused, fmt.Errorf("%d of %d Apps refused by the admission policy", refused, len(apps)))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "App manifests: a file, a directory or - for stdin")
	c.Flags().StringVar(&rulesFile, "policy", "", "policy file of custom rules, as the daemon's --policy")
	c.Flags().StringVar(&profile, "profile", "baseline", "the daemon's security profile to check against: privileged, baseline or restricted")
	return c
}
