package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
)

// readManifests reads the App documents of a file, a directory (its
// .yaml, .yml and .json files, sorted) or "-" (stdin). Every App of every
// file is checked before anything is returned: one bad document stops
// them all, with each problem named by file, document, line and field.
func readManifests(g *globals, path string) ([]api.App, error) {
	var files []string
	if path == "-" {
		files = []string{"-"}
	} else {
		st, err := os.Stat(path)
		if err != nil {
			return nil, errdefs.Invalid("cannot read %s: %v", path, err)
		}
		if st.IsDir() {
			ents, err := os.ReadDir(path)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				switch strings.ToLower(filepath.Ext(e.Name())) {
				case ".yaml", ".yml", ".json":
					files = append(files, filepath.Join(path, e.Name()))
				}
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, errdefs.Invalid("%s holds no .yaml, .yml or .json files", path)
			}
		} else {
			files = []string{path}
		}
	}
	var all []api.App
	var problems []string
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(g.stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, err
		}
		apps, err := app.Load(bytes.NewReader(data))
		if err != nil {
			name := f
			if f == "-" {
				name = "stdin"
			}
			if fes := app.FieldErrorsOf(err); len(fes) > 0 {
				for _, fe := range fes {
					problems = append(problems, name+": "+fe.Error())
				}
			} else {
				problems = append(problems, name+": "+err.Error())
			}
			continue
		}
		all = append(all, apps...)
	}
	if len(problems) > 0 {
		return nil, errdefs.Invalid("%s\nnothing was applied", strings.Join(problems, "\n"))
	}
	seen := map[string]bool{}
	for _, a := range all {
		if seen[a.Metadata.Name] {
			return nil, errdefs.Invalid("app %q is defined twice: nothing was applied", a.Metadata.Name)
		}
		seen[a.Metadata.Name] = true
	}
	return all, nil
}

func newApplyCmd(g *globals) *cobra.Command {
	var file string
	var wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update Apps from YAML",
		Long: `Create or update Apps from YAML documents (several per file, separated
by ---). Every document is checked first: if any is invalid, nothing is
applied and every problem is listed with its line and field.`,
		Example: `  skiff apply -f examples/hello/app.yaml
  skiff apply -f deploy/ --wait
  cat app.yaml | skiff apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errdefs.Invalid("give the manifests with -f FILE, -f DIR or -f -")
			}
			apps, err := readManifests(g, file)
			if err != nil {
				return err
			}
			cl := g.client()
			gens := map[string]int64{}
			var order []string
			for _, a := range apps {
				before, gerr := cl.App(cmd.Context(), a.Metadata.Name)
				out, err := cl.ApplyApp(cmd.Context(), a)
				if err != nil {
					return err
				}
				verb := "configured"
				switch {
				case gerr != nil && errors.Is(gerr, errdefs.ErrNotFound):
					verb = "created"
				case gerr == nil && before.Metadata.Generation == out.Metadata.Generation && equalMeta(before, out):
					verb = "unchanged"
				}
				fmt.Fprintf(g.stdout, "app/%s %s\n", out.Metadata.Name, verb)
				gens[out.Metadata.Name] = out.Metadata.Generation
				order = append(order, out.Metadata.Name)
			}
			if wait {
				return waitRollouts(cmd.Context(), cl, g.stdout, gens, order, timeout)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "file, directory or - for stdin")
	c.Flags().BoolVar(&wait, "wait", false, "wait until every applied App is Ready at the applied generation; exit non-zero naming the condition that failed")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait: how long to wait")
	return c
}

func equalMeta(a, b api.App) bool {
	return fmt.Sprint(a.Metadata.Labels, a.Metadata.Annotations) == fmt.Sprint(b.Metadata.Labels, b.Metadata.Annotations)
}

func newDiffCmd(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show what apply would change",
		Long:  "Show what apply would change, as a diff of each App's stored spec and the one in the files. Exits 1 when there are differences, like kubectl diff.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errdefs.Invalid("give the manifests with -f FILE, -f DIR or -f -")
			}
			apps, err := readManifests(g, file)
			if err != nil {
				return err
			}
			changed := false
			for _, a := range apps {
				cur, err := g.client().App(cmd.Context(), a.Metadata.Name)
				if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					return err
				}
				cur.Status, a.Status = api.AppStatus{}, api.AppStatus{}
				if err == nil {
					a.Metadata.UID, a.Metadata.Generation, a.Metadata.CreationTimestamp = cur.Metadata.UID, cur.Metadata.Generation, cur.Metadata.CreationTimestamp
				}
				d := app.Diff(cur, a)
				if d != "" {
					changed = true
					fmt.Fprint(g.stdout, d)
				}
			}
			if changed {
				return withCode(1, nil)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "file, directory or - for stdin")
	return c
}
