package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/cli/compose"
)

// printComposeApps writes a compose ps row for each App of project (of
// the services in want, all when want is empty): its name, image,
// service, age, readiness and URL; with quiet only its name.
func printComposeApps(ctx context.Context, g *globals, w io.Writer, project string, want map[string]bool, quiet bool) error {
	apps, err := g.engine().ProjectApps(ctx, project)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, a := range apps {
		svc := a.Metadata.Labels[compose.LabelService]
		if len(want) > 0 && !want[svc] {
			continue
		}
		if quiet {
			fmt.Fprintln(w, a.Metadata.Name)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Metadata.Name, a.Spec.Image, svc, ago(a.Metadata.CreationTimestamp, now),
			appStatusText(a), a.Status.URL)
	}
	return nil
}

// appStatusText is an App's state in a compose ps row: "App ready (2/2)"
// or "App not ready (Reason)".
func appStatusText(a api.App) string {
	r := a.Status.Replicas
	for _, c := range a.Status.Conditions {
		if c.Type == api.ConditionReady && c.Status == api.ConditionTrue {
			return fmt.Sprintf("App ready (%d/%d)", r.Ready, r.Desired)
		}
		if c.Type == api.ConditionReady && c.Reason != "" {
			return fmt.Sprintf("App not ready (%s)", c.Reason)
		}
	}
	return fmt.Sprintf("App not ready (%d/%d)", r.Ready, r.Desired)
}
