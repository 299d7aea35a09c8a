package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/kube"
)

// readInputs returns the contents of a file, of a directory's .yaml,
// .yml and .json files (sorted), or of stdin ("-"), each with its name.
func readInputs(g *globals, path string) (names []string, data [][]byte, err error) {
	if path == "-" {
		b, err := io.ReadAll(g.stdin)
		return []string{"stdin"}, [][]byte{b}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, errdefs.Invalid("cannot read %s: %v", path, err)
	}
	files := []string{path}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, nil, err
		}
		files = nil
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, nil, errdefs.Invalid("%s holds no .yaml, .yml or .json files", path)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		names, data = append(names, f), append(data, b)
	}
	return names, data, nil
}

// emitApps prints the Apps as YAML (-o yaml) or applies them through the
// daemon as skiff apply does, after printing the warnings on stderr.
func emitApps(cmd *cobra.Command, g *globals, apps []api.App, warns []kube.Warning, output string) error {
	for _, w := range warns {
		fmt.Fprintln(g.stderr, "warning:", w)
	}
	if output == outYAML {
		for i, a := range apps {
			if i > 0 {
				fmt.Fprintln(g.stdout, "---")
			}
			b, err := app.MarshalYAML(a)
			if err != nil {
				return err
			}
			if _, err := g.stdout.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	cl := g.client()
	for _, a := range apps {
		out, err := cl.ApplyApp(cmd.Context(), a)
		if err != nil {
			return fmt.Errorf("app %s: %w", a.Metadata.Name, err)
		}
		fmt.Fprintf(g.stdout, "app/%s applied\n", out.Metadata.Name)
	}
	return nil
}

func newKubeImportCmd(g *globals) *cobra.Command {
	var file, output string
	c := &cobra.Command{
		Use:   "import -f FILE|DIR|- [-o yaml]",
		Short: "Make Apps from Kubernetes or Knative manifests",
		Long: `Make Apps from Kubernetes manifests: each Deployment with the Services
that select it, the HorizontalPodAutoscaler that scales it and the
Ingresses or HTTPRoutes in front of it, and each Knative Service. Every
field that has no App counterpart is named in a warning on stderr.

Without -o the Apps are applied, as skiff apply does; with -o yaml they
are printed instead.`,
		Example: `  skiff kube import -f k8s/ -o yaml > apps.yaml
  skiff kube import -f knative-service.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outYAML); err != nil {
				return err
			}
			if file == "" {
				return withCode(1, errdefs.Invalid("give the manifests with -f FILE, -f DIR or -f -"))
			}
			names, data, err := readInputs(g, file)
			if err != nil {
				return err
			}
			var objs []*kube.Object
			for i, d := range data {
				o, err := kube.DecodeManifests(bytes.NewReader(d))
				if err != nil {
					return fmt.Errorf("%s: %w", names[i], err)
				}
				objs = append(objs, o...)
			}
			apps, warns, err := kube.Import(objs)
			if err != nil {
				return err
			}
			return emitApps(cmd, g, apps, warns, output)
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "file, directory or - for stdin")
	addOutputFlag(c, &output, outYAML)
	return c
}

func newImportCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "import",
		Short: "Make Apps from other platforms' definitions",
	}
	var file, output string
	aca := &cobra.Command{
		Use:   "aca -f FILE|- [-o yaml]",
		Short: "Make an App from an Azure Container Apps YAML definition",
		Long: `Make an App from an Azure Container Apps YAML definition (as az containerapp
show -o yaml prints it): its first container, HTTP, CPU and memory scale
rules, ingress and traffic weights, secrets (referred to; their values are
not imported) and revisions. Every field with no App counterpart is named
in a warning on stderr. Without -o the App is applied; with -o yaml it is
printed.`,
		Example: `  skiff import aca -f orders.yaml -o yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outYAML); err != nil {
				return err
			}
			if file == "" {
				return withCode(1, errdefs.Invalid("give the definition with -f FILE or -f -"))
			}
			names, data, err := readInputs(g, file)
			if err != nil {
				return err
			}
			var apps []api.App
			var warns []kube.Warning
			for i, d := range data {
				a, w, err := kube.ImportACA(d)
				if err != nil {
					return fmt.Errorf("%s: %w", names[i], err)
				}
				apps, warns = append(apps, a), append(warns, w...)
			}
			return emitApps(cmd, g, apps, warns, output)
		},
	}
	aca.Flags().StringVarP(&file, "filename", "f", "", "file or - for stdin")
	addOutputFlag(aca, &output, outYAML)
	c.AddCommand(aca)
	return c
}
