package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/kube"
)

func newKubeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "kube",
		Short: "Translate Apps to Kubernetes objects and back, and apply them to a cluster",
		Long: `Translate Apps to Kubernetes objects (export) and Kubernetes or Knative
manifests to Apps (import); put Apps on a cluster (apply) and show what
that would change (diff). docs/kubernetes.md maps every App field.`,
	}
	c.AddCommand(newKubeExportCmd(g), newKubeImportCmd(g), newKubeApplyCmd(g), newKubeDiffCmd(g))
	return c
}

// kubeSource is what an export starts from: Apps from files or from the
// daemon, with the daemon's revisions and (when asked) secret values.
type kubeSource struct {
	file           string
	includeSecrets bool
}

// load returns the Apps named in args (all the daemon's Apps when none)
// or those of the file, and fills opts with the daemon's revisions and
// secret values.
func (s kubeSource) load(ctx context.Context, g *globals, args []string, opts *kube.Options) ([]api.App, error) {
	if s.file != "" {
		if len(args) > 0 {
			return nil, withCode(1, errdefs.Invalid("give App names or -f FILE, not both"))
		}
		apps, err := readManifests(g, s.file)
		if err != nil {
			return nil, err
		}
		if s.includeSecrets {
			err = revealSecrets(ctx, g, apps, opts)
		}
		return apps, err
	}
	cl := g.client()
	var apps []api.App
	if len(args) == 0 {
		all, err := cl.Apps(ctx)
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, errdefs.NotFound("no Apps to export: apply one first, or give -f FILE")
		}
		apps = all
	}
	for _, name := range args {
		a, err := cl.App(ctx, name)
		if err != nil {
			return nil, err
		}
		apps = append(apps, a)
	}
	opts.Revisions = map[string][]api.Revision{}
	for _, a := range apps {
		revs, err := cl.Revisions(ctx, a.Metadata.Name)
		if err != nil {
			return nil, err
		}
		opts.Revisions[a.Metadata.Name] = revs
	}
	if s.includeSecrets {
		if err := revealSecrets(ctx, g, apps, opts); err != nil {
			return nil, err
		}
	}
	return apps, nil
}

// revealSecrets reads the values of every secret the Apps' env (and
// their revisions') refer to: an admin's right.
func revealSecrets(ctx context.Context, g *globals, apps []api.App, opts *kube.Options) error {
	names := map[string]bool{}
	add := func(env []api.EnvVar) {
		for _, e := range env {
			if n, _, ok := strings.Cut(e.SecretRef, "/"); ok {
				names[n] = true
			}
		}
	}
	for _, a := range apps {
		add(a.Spec.Env)
		for _, r := range opts.Revisions[a.Metadata.Name] {
			add(r.Spec.Env)
		}
	}
	opts.Secrets = map[string]map[string][]byte{}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		v, err := g.client().RevealSecret(ctx, n)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("secret %s, used by the Apps' env: %w", n, err)
			}
			return fmt.Errorf("read secret %s for --include-secrets (needs an admin token over TCP): %w", n, err)
		}
		opts.Secrets[n] = v.Data
	}
	return nil
}

func newKubeExportCmd(g *globals) *cobra.Command {
	var src kubeSource
	var output, flavor string
	var opts kube.Options
	c := &cobra.Command{
		Use:   "export [APP...|-f FILE]",
		Short: "Print Apps as Kubernetes objects",
		Long: `Print Apps as Kubernetes objects: the named Apps of the daemon (all of
them when none is named) with their revisions, or the Apps of a file.

The plain flavor makes a Deployment per revision that has traffic, a
Service per App (and per revision when traffic is split), a
HorizontalPodAutoscaler, a Gateway API HTTPRoute with the traffic weights
(an Ingress with --ingress), PersistentVolumeClaims for volumes and, with
--include-secrets, the Secrets the env refers to. The knative flavor makes
a serving.knative.dev/v1 Service. Both make a NetworkPolicy per App that
admits its own pods, the Apps of spec.network.allowFrom and the pods of
the namespaces labelled skiff.dev/ingress=true (the cluster's ingress).
Each App field without a Kubernetes counterpart is named in a warning on
stderr.`,
		Example: `  skiff kube export shop > shop.k8s.yaml
  skiff kube export -f app.yaml --flavor knative --namespace web
  skiff kube export shop --include-secrets --ingress -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outYAML, outJSON); err != nil {
				return err
			}
			opts.Flavor = kube.Flavor(flavor)
			if opts.Flavor != kube.Plain && opts.Flavor != kube.Knative {
				return withCode(125, errdefs.Invalid("unknown flavor %q: use plain or knative", flavor))
			}
			src.includeSecrets = opts.IncludeSecrets
			apps, err := src.load(cmd.Context(), g, args, &opts)
			if err != nil {
				return err
			}
			objs, warns, err := kube.Export(apps, opts)
			if err != nil {
				return err
			}
			for _, w := range warns {
				fmt.Fprintln(g.stderr, "warning:", w)
			}
			var out []byte
			if output == outJSON {
				out, err = kube.EncodeJSON(objs)
			} else {
				out, err = kube.EncodeYAML(objs)
			}
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	c.Flags().StringVarP(&src.file, "filename", "f", "", "export the Apps of this file, directory or - (stdin) instead of the daemon's")
	c.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml|json")
	c.Flags().StringVar(&flavor, "flavor", string(kube.Plain), "plain (Deployments, Services, HPA, HTTPRoute) or knative (a Knative Service)")
	c.Flags().StringVar(&opts.Namespace, "namespace", "", "namespace set on every object")
	c.Flags().BoolVar(&opts.IncludeSecrets, "include-secrets", false, "also export the secrets the Apps use, with their values (needs an admin token over TCP)")
	c.Flags().BoolVar(&opts.Ingress, "ingress", false, "a networking.k8s.io/v1 Ingress instead of a Gateway API HTTPRoute")
	c.Flags().StringVar(&opts.Gateway, "gateway", "skiff", "the Gateway (NAME or NAMESPACE/NAME) external Apps' HTTPRoutes attach to")
	c.Flags().StringVar(&opts.Domain, "domain", "", "write default hosts (NAME.DOMAIN, TAG-NAME.DOMAIN) into routes")
	return c
}
