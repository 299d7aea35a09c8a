package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/kube"
	"skiff.dev/skiff/internal/cli/kubeapply"
)

// kubeTarget is what kube apply and diff share: the Apps, how to export
// them and the cluster to put them on.
type kubeTarget struct {
	src            kubeSource
	conn           kubeapply.ConnectOptions
	opts           kube.Options
	flavor         string
	prune          bool
	forceConflicts bool
}

func (t *kubeTarget) addFlags(c *cobra.Command) {
	c.Flags().StringVarP(&t.src.file, "filename", "f", "", "the Apps of this file, directory or - (stdin) instead of the daemon's")
	c.Flags().StringVar(&t.conn.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	c.Flags().StringVar(&t.conn.Context, "context", "", "kubeconfig context (default its current context)")
	c.Flags().StringVarP(&t.conn.Namespace, "namespace", "n", "", "namespace (default the context's, or default)")
	c.Flags().StringVar(&t.flavor, "flavor", string(kube.Plain), "plain (Deployments, Services, HPA, HTTPRoute) or knative (a Knative Service)")
	c.Flags().BoolVar(&t.opts.IncludeSecrets, "include-secrets", false, "also put the secrets the Apps use, with their values (needs an admin token over TCP)")
	c.Flags().BoolVar(&t.opts.Ingress, "ingress", false, "a networking.k8s.io/v1 Ingress instead of a Gateway API HTTPRoute")
	c.Flags().StringVar(&t.opts.Gateway, "gateway", "skiff", "the Gateway (NAME or NAMESPACE/NAME) external Apps' HTTPRoutes attach to")
	c.Flags().StringVar(&t.opts.Domain, "domain", "", "write default hosts (NAME.DOMAIN, TAG-NAME.DOMAIN) into routes")
	c.Flags().BoolVar(&t.forceConflicts, "force-conflicts", false, "take over fields another field manager owns instead of failing")
}

// kubeGVK are the kinds whose presence decides how Apps are exported.
var (
	httpRouteGVK  = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
	knativeSvcGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}
)

// prepare connects to the cluster, loads the Apps and exports them for
// what the cluster serves: without the Gateway API routes become
// Ingresses (with a warning); the knative flavor needs Knative Serving.
// It returns the objects and the names of the Apps.
func (t *kubeTarget) prepare(ctx context.Context, g *globals, args []string) (*kubeapply.Cluster, []*unstructured.Unstructured, []string, error) {
	t.opts.Flavor = kube.Flavor(t.flavor)
	if t.opts.Flavor != kube.Plain && t.opts.Flavor != kube.Knative {
		return nil, nil, nil, withCode(125, errdefs.Invalid("unknown flavor %q: use plain or knative", t.flavor))
	}
	cl, err := kubeapply.Connect(t.conn, func(w string) { fmt.Fprintln(g.stderr, "warning:", w) })
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cl.Check(); err != nil {
		return nil, nil, nil, err
	}
	t.opts.Namespace = cl.Namespace
	t.src.includeSecrets = t.opts.IncludeSecrets
	apps, err := t.src.load(ctx, g, args, &t.opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if t.opts.Flavor == kube.Knative {
		ok, err := cl.Serves(knativeSvcGVK)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			return nil, nil, nil, errdefs.NotFound("the cluster does not serve Knative Services (serving.knative.dev/v1): install Knative Serving (its CRDs services, configurations, revisions and routes.serving.knative.dev from serving-crds.yaml, then serving-core.yaml), or use --flavor plain")
		}
	}
	objs, warns, err := kube.Export(apps, t.opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if t.opts.Flavor == kube.Plain && !t.opts.Ingress && hasKind(objs, httpRouteGVK) {
		ok, err := cl.Serves(httpRouteGVK)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			fmt.Fprintln(g.stderr, "warning: the cluster does not serve the Gateway API (gateway.networking.k8s.io/v1 HTTPRoute): routes become networking.k8s.io/v1 Ingresses, which cannot split traffic by weight; install the Gateway API CRDs (standard-install.yaml) for HTTPRoutes")
			t.opts.Ingress = true
			if objs, warns, err = kube.Export(apps, t.opts); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for _, w := range warns {
		fmt.Fprintln(g.stderr, "warning:", w)
	}
	maps, err := kube.ToMaps(objs)
	if err != nil {
		return nil, nil, nil, err
	}
	us := make([]*unstructured.Unstructured, len(maps))
	for i, m := range maps {
		us[i] = &unstructured.Unstructured{Object: m}
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Metadata.Name
	}
	return cl, us, names, nil
}

func hasKind(objs []runtime.Object, gvk schema.GroupVersionKind) bool {
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind() == gvk {
			return true
		}
	}
	return false
}

func newKubeApplyCmd(g *globals) *cobra.Command {
	var t kubeTarget
	var dryRun string
	var wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "apply [APP...|-f FILE]",
		Short: "Put Apps on a Kubernetes cluster with server-side apply",
		Long: `Export Apps (the named Apps of the daemon, all of them when none is named,
or the Apps of a file) and put the objects on a Kubernetes cluster with
server-side apply, as field manager "skiff", with strict field validation.
Every object is first checked by a server-side dry run: if the cluster
refuses one, nothing is applied and each refused field is named with the
App field it comes from.

--prune deletes the objects of these Apps that skiff applied before and
that they no longer declare (found by the labels skiff.dev/app and
app.kubernetes.io/managed-by=skiff); nothing else is touched. --wait waits
until every Deployment has rolled out (observed generation, replicas
updated and available, condition Available).

Without the Gateway API on the cluster, routes become Ingresses (with a
warning); the knative flavor needs Knative Serving installed.`,
		Example: `  skiff kube apply shop --namespace web --wait
  skiff kube apply -f app.yaml --prune
  skiff kube apply -f app.yaml --dry-run=server`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dryRun != "none" && dryRun != "server" {
				return withCode(125, errdefs.Invalid("--dry-run=%s: use server (the cluster checks everything and stores nothing) or none", dryRun))
			}
			ctx := cmd.Context()
			cl, objs, apps, err := t.prepare(ctx, g, args)
			if err != nil {
				return err
			}
			o := kubeapply.ApplyOptions{DryRun: dryRun == "server", ForceConflicts: t.forceConflicts}
			suffix := ""
			if o.DryRun {
				suffix = " (server dry run)"
			}
			res, err := cl.Apply(ctx, objs, o)
			if err != nil {
				return err
			}
			for _, r := range res {
				fmt.Fprintf(g.stdout, "%s %s%s\n", r.Ref, r.Action, suffix)
			}
			if t.prune {
				pruned, err := cl.Prune(ctx, apps, objs, o)
				for _, r := range pruned {
					fmt.Fprintf(g.stdout, "%s %s%s\n", r.Ref, r.Action, suffix)
				}
				if err != nil {
					return err
				}
			}
			if wait && !o.DryRun {
				return cl.Wait(ctx, objs, timeout, g.stdout)
			}
			return nil
		},
	}
	t.addFlags(c)
	c.Flags().StringVar(&dryRun, "dry-run", "none", "server: the cluster checks every object and stores nothing")
	c.Flags().Lookup("dry-run").NoOptDefVal = "server"
	c.Flags().BoolVar(&t.prune, "prune", false, "delete the objects of these Apps that skiff applied before and they no longer declare")
	c.Flags().BoolVar(&wait, "wait", false, "wait until every Deployment (or Knative Service) has rolled out")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait: how long to wait")
	return c
}

func newKubeDiffCmd(g *globals) *cobra.Command {
	var t kubeTarget
	c := &cobra.Command{
		Use:   "diff [APP...|-f FILE]",
		Short: "Show what kube apply would change on a cluster",
		Long: `Show what skiff kube apply would change, as kubectl diff does: a unified
diff of each object's live YAML and the result of a server-side dry run of
the apply (status and the metadata the server rewrites left out). With
--prune, the objects apply --prune would delete are shown too. Exits 0
when nothing would change, 1 when something would, 2 on an error.`,
		Example: `  skiff kube diff shop --namespace web
  skiff kube diff -f app.yaml --prune`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, objs, apps, err := t.prepare(ctx, g, args)
			if err != nil {
				return withCode(2, err)
			}
			if !t.prune {
				apps = nil
			}
			d, err := cl.Diff(ctx, objs, apps, kubeapply.ApplyOptions{ForceConflicts: t.forceConflicts})
			if err != nil {
				return withCode(2, err)
			}
			if d == "" {
				return nil
			}
			fmt.Fprint(g.stdout, d)
			return withCode(1, nil)
		},
	}
	t.addFlags(c)
	c.Flags().BoolVar(&t.prune, "prune", false, "also show the objects apply --prune would delete")
	return c
}
