package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
	"skiff.dev/skiff/api/errdefs"
)

func newSourceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "source",
		Short: "Follow git repositories of App documents (GitOps)",
		Long: `A source is a git repository whose App documents skiff keeps applied: it is
polled (every 30s by default) and synced on webhook calls. Each sync checks
every App under --path first (one bad file fails it and changes nothing),
applies what changed, and prunes the Apps the source applied and no longer
declares. Changes made by hand to those Apps are reverted at the next sync.`,
	}
	c.AddCommand(newSourceAddCmd(g), newSourceLsCmd(g), newSourceDescribeCmd(g), newSourceHistoryCmd(g),
		newSourceSyncCmd(g), newSourceDiffCmd(g), newSourceSuspendCmd(g, true), newSourceSuspendCmd(g, false), newSourceRmCmd(g))
	return c
}

func newSourceAddCmd(g *globals) *cobra.Command {
	var s api.Source
	var prune bool
	var interval time.Duration
	var noWait bool
	var sshKeys, gpgKeys, caFile string
	c := &cobra.Command{
		Use:   "add NAME --git URL [--branch B | --tag T | --semver RANGE] [--path DIR] [--interval D]",
		Short: "Add a source and sync it",
		Example: `  skiff source add shop --git https://git.example.com/team/deploy.git --path shop --token-secret git-token
  skiff source add int --git https://git.internal/team/deploy.git --token-secret git-token --ca-file internal-ca.pem
  skiff source add prod --git ssh://git@git.example.com/team/deploy.git --semver '>=1.0.0' --ssh-key /root/.ssh/deploy --known-hosts /root/.ssh/known_hosts
  skiff source add local --git file:///srv/deploy.git --interval 5s --webhook-secret hook`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Name = args[0]
			s.Spec.Interval.Duration = interval
			if cmd.Flags().Changed("prune") {
				s.Spec.Prune = &prune
			}
			for _, p := range []*string{&s.Spec.SSHKeyFile, &s.Spec.KnownHostsFile} {
				if *p != "" {
					abs, err := filepath.Abs(*p)
					if err != nil {
						return err
					}
					*p = abs
				}
			}
			for _, k := range []struct {
				file string
				into *string
				what string
			}{{sshKeys, &s.Spec.VerifySSHKeys, "the signing keys"}, {gpgKeys, &s.Spec.VerifyGPGKeys, "the signing keys"}, {caFile, &s.Spec.CABundle, "the --ca-file"}} {
				if k.file != "" {
					b, err := os.ReadFile(k.file)
					if err != nil {
						return withCode(1, errdefs.Invalid("read %s: %v", k.what, err))
					}
					*k.into = string(b)
				}
			}
			cl := g.client()
			out, err := cl.AddSource(cmd.Context(), s)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "source/%s added\n", out.Name)
			if noWait || s.Spec.Suspend {
				return nil
			}
			synced, err := firstSync(cmd.Context(), cl, out.Name)
			if err != nil {
				return err
			}
			return printSync(g.stdout, synced)
		},
	}
	f := c.Flags()
	f.StringVar(&s.Spec.Git, "git", "", "the repository's URL (https://, http://, ssh://, USER@HOST:PATH or file://)")
	f.StringVar(&s.Spec.Branch, "branch", "", "follow this branch (default: the repository's default branch)")
	f.StringVar(&s.Spec.Tag, "tag", "", "follow this tag")
	f.StringVar(&s.Spec.Semver, "semver", "", "follow the highest tag in this version range, e.g. '>=1.2.0 <2'")
	f.StringVar(&s.Spec.Path, "path", "", "directory of the App documents in the repository (default: all of it)")
	f.DurationVar(&interval, "interval", 0, "how often to poll (default 30s)")
	f.StringVar(&s.Spec.SSHKeyFile, "ssh-key", "", "private key file on the daemon's host, for ssh URLs")
	f.StringVar(&s.Spec.KnownHostsFile, "known-hosts", "", "known_hosts file on the daemon's host (default ~/.ssh/known_hosts)")
	f.StringVar(&s.Spec.TokenSecret, "token-secret", "", "skiff secret holding the HTTPS token (key token, or its only key)")
	f.StringVar(&caFile, "ca-file", "", "PEM CA bundle to trust for an https repository besides the system's (read by the CLI, kept in the source)")
	f.StringVar(&s.Spec.WebhookSecret, "webhook-secret", "", "skiff secret webhook calls are checked against; turns the webhook on")
	f.BoolVar(&prune, "prune", true, "delete the Apps the source applied and no longer declares")
	f.BoolVar(&s.Spec.Suspend, "suspend", false, "add it suspended: syncs only report drift")
	f.StringVar(&sshKeys, "verify-ssh-keys", "", "apply only commits signed by these SSH keys (a file of authorized_keys or allowed_signers lines)")
	f.StringVar(&gpgKeys, "verify-gpg-keys", "", "apply only commits signed by these OpenPGP keys (an armored public key file)")
	f.BoolVar(&noWait, "no-wait", false, "return at once instead of waiting for the first sync")
	return c
}

// firstSync waits for a new source's first sync to end (its loop starts
// it at once) and returns the source as it left it.
func firstSync(ctx context.Context, cl *client.Client, name string) (api.Source, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		s, err := cl.Source(ctx, name)
		if err != nil {
			return api.Source{}, err
		}
		if s.Status.LastResult != "" && s.Status.Syncing == "" {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return api.Source{}, fmt.Errorf("source %s: the first sync did not end: see skiff source describe %s", name, name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// objectRef names a source's object as kind/name: app/web, secret/db.
func objectRef(o api.SourceObject) string {
	kind := strings.ToLower(o.Kind)
	if kind == "" {
		kind = "app"
	}
	return kind + "/" + o.Name
}

// printSync prints what a sync did and fails (exit 1) if it failed.
func printSync(w io.Writer, s api.Source) error {
	st := s.Status
	for _, o := range st.Objects {
		line := fmt.Sprintf("%s %s", objectRef(o), o.Action)
		if o.Message != "" && o.Action == "failed" {
			line += ": " + o.Message
		}
		fmt.Fprintln(w, line)
	}
	if len(st.Drift) > 0 {
		fmt.Fprintf(w, "drift: %s\n", strings.Join(st.Drift, ", "))
	}
	if st.LastResult == api.SourceResultFailed {
		return withCode(1, fmt.Errorf("source %s: sync failed: %s", s.Name, st.LastError))
	}
	fmt.Fprintf(w, "source/%s at %s: %s\n", s.Name, orDash(short12(st.Commit)), st.LastResult)
	return nil
}

func short12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func newSourceLsCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "ls",
		Short: "List sources: ref, applied commit, last result, readiness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			srcs, err := g.client().Sources(cmd.Context())
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, srcs)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tURL\tREF\tCOMMIT\tRESULT\tREADY\tLAST SYNC")
			for _, s := range srcs {
				last := "-"
				if !s.Status.LastSync.IsZero() {
					last = ago(s.Status.LastSync, now)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", s.Name, s.Spec.Git, refOf(s), orDash(short12(s.Status.Commit)),
					orDash(suspended(s)), s.Status.Ready, last)
			}
			return tw.Flush()
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func suspended(s api.Source) string {
	if s.Spec.Suspend {
		return "Suspended"
	}
	return s.Status.LastResult
}

func refOf(s api.Source) string {
	switch {
	case s.Spec.Branch != "":
		return s.Spec.Branch
	case s.Spec.Tag != "":
		return "tag " + s.Spec.Tag
	case s.Spec.Semver != "":
		return "semver " + s.Spec.Semver
	}
	return "HEAD"
}

func newSourceDescribeCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a source: what it follows, its last sync, each App's status, its events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			cl := g.client()
			s, err := cl.Source(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, s)
			}
			describeSource(g.stdout, s)
			evs, err := cl.Events(cmd.Context(), client.EventsOptions{Kind: api.EventKindSource, Name: s.Name, Limit: 15})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Events:")
			if len(evs) == 0 {
				fmt.Fprintln(g.stdout, "  none")
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			for _, e := range evs {
				msg, _, _ := strings.Cut(eventMessage(e), "\n")
				fmt.Fprintf(tw, "  %s ago\t%s\t%s\t%s\n", humanDuration(now.Sub(e.Time)), e.Type, e.Reason, msg)
			}
			return tw.Flush()
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func describeSource(w io.Writer, s api.Source) {
	sp, st := s.Spec, s.Status
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", s.Name)
	fmt.Fprintf(tw, "URL:\t%s\n", sp.Git)
	fmt.Fprintf(tw, "Ref:\t%s\n", refOf(s))
	fmt.Fprintf(tw, "Path:\t%s\n", orDash(sp.Path))
	interval := "30s"
	if sp.Interval.Duration > 0 {
		interval = sp.Interval.String()
	}
	fmt.Fprintf(tw, "Interval:\t%s\n", interval)
	fmt.Fprintf(tw, "Prune:\t%v\n", sp.Prune == nil || *sp.Prune)
	fmt.Fprintf(tw, "Suspended:\t%v\n", sp.Suspend)
	fmt.Fprintf(tw, "Webhook:\t%v\n", sp.WebhookSecret != "")
	fmt.Fprintf(tw, "Signed commits only:\t%v\n", sp.VerifySSHKeys != "" || sp.VerifyGPGKeys != "")
	fmt.Fprintf(tw, "Commit:\t%s %s\n", orDash(st.Commit), st.Ref)
	fmt.Fprintf(tw, "Last sync:\t%s %s\n", orDash(st.LastResult), lastSyncTime(st))
	if st.LastError != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", st.LastError)
	}
	ready := fmt.Sprint(st.Ready)
	if st.Message != "" {
		ready += " (" + st.Message + ")"
	}
	fmt.Fprintf(tw, "Ready:\t%s\n", ready)
	if len(st.Drift) > 0 {
		fmt.Fprintf(tw, "Drift:\t%s\n", strings.Join(st.Drift, ", "))
	}
	tw.Flush()
	if len(st.Objects) > 0 {
		fmt.Fprintln(w, "Objects:")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND\tNAME\tLAST ACTION\tREADY\tMESSAGE")
		for _, o := range st.Objects {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%v\t%s\n", o.Kind, o.Name, o.Action, o.Ready, o.Message)
		}
		tw.Flush()
	}
}

func lastSyncTime(st api.SourceStatus) string {
	if st.LastSync.IsZero() {
		return ""
	}
	return "at " + st.LastSync.Local().Format(time.RFC3339)
}

func newSourceHistoryCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "history NAME",
		Short: "List the syncs that changed something or failed, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outYAML); err != nil {
				return err
			}
			h, err := g.client().SourceHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(g.stdout, output, h)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "COMMIT\tTIME\tRESULT\tDURATION\tMESSAGE")
			for _, e := range h {
				msg, _, _ := strings.Cut(e.Message, "\n")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", orDash(short12(e.Commit)), e.Time.Local().Format(time.RFC3339), e.Result,
					e.Duration.Round(time.Millisecond), msg)
			}
			return tw.Flush()
		},
	}
	addOutputFlag(c, &output, outJSON, outYAML)
	return c
}

func newSourceSyncCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync a source now and print what it did (exit 1 if the sync failed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.client().SyncSource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printSync(g.stdout, s)
		},
	}
}

func newSourceSuspendCmd(g *globals, suspend bool) *cobra.Command {
	use, short := "resume NAME", "Apply a suspended source's commits again (syncs at once)"
	if suspend {
		use, short = "suspend NAME", "Stop applying a source: syncs only report drift"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := g.client()
			var err error
			if suspend {
				_, err = cl.SuspendSource(cmd.Context(), args[0])
			} else {
				_, err = cl.ResumeSource(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "source/%s %s\n", args[0], map[bool]string{true: "suspended", false: "resumed"}[suspend])
			return nil
		},
	}
}

func newSourceRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove sources; the Apps they applied keep running",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := g.client()
			return eachArg(g, args, func(name string) error {
				if err := cl.RemoveSource(cmd.Context(), name); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "source/%s removed\n", name)
				return nil
			})
		},
	}
}

func newSourceDiffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME",
		Short: "Show what a sync would do now, changing nothing (exit 1 when it would change something)",
		Long: `Fetch the commit the source follows, check it as a sync does, and print what a
sync would do to each App, with the diff of each App it would create or
change. Changes nothing. Exits 1 when a sync would change something, like
skiff diff and kubectl diff; an invalid commit is an error naming its files.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.client().DiffSource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			changed := false
			for _, o := range d.Objects {
				if o.Action == "unchanged" {
					continue
				}
				changed = true
				line := fmt.Sprintf("%s would be %s", objectRef(o), o.Action)
				if o.Message != "" {
					line += " (" + o.Message + ")"
				}
				fmt.Fprintln(g.stdout, line)
				fmt.Fprint(g.stdout, o.Diff)
			}
			if !changed {
				fmt.Fprintf(g.stdout, "source/%s: commit %s changes nothing\n", d.Source, short12(d.Commit))
				return nil
			}
			return withCode(1, nil)
		},
	}
}
