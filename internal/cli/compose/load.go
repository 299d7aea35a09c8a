package compose

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api/errdefs"
)

// LoadOptions say where a project comes from, as docker compose's global
// flags do.
type LoadOptions struct {
	// Files are the compose files, merged in order; empty means
	// compose.yaml (or docker-compose.yml) in WorkDir or a parent.
	Files []string
	// ProjectName overrides the name (default: the name key, then
	// COMPOSE_PROJECT_NAME, then the directory's name).
	ProjectName string
	// Profiles enable the services that name them.
	Profiles []string
	// EnvFiles replace the default .env for interpolation.
	EnvFiles []string
	// WorkDir is the project directory (default: the first file's).
	WorkDir string
}

// Load parses, merges, interpolates and validates a project. Errors name
// the file and, where the library knows it, the line; they are Invalid.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(o.WorkDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithProfiles(o.Profiles),
		cli.WithResolvedPaths(true),
	}
	if o.ProjectName != "" {
		opts = append(opts, cli.WithName(o.ProjectName))
	} else if env := os.Getenv("COMPOSE_PROJECT_NAME"); env != "" {
		opts = append(opts, cli.WithName(env))
	}
	po, err := cli.NewProjectOptions(o.Files, opts...)
	if err != nil {
		return nil, errdefs.Invalid("%v", err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, loadError(po.ConfigPaths, err)
	}
	p, err = p.WithServicesEnvironmentResolved(true)
	if err != nil {
		return nil, errdefs.Invalid("%v", err)
	}
	if err := checkProject(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Config returns the resolved model as `docker compose config` prints it.
func Config(p *types.Project) ([]byte, error) {
	b, err := p.MarshalYAML()
	if err != nil {
		return nil, fmt.Errorf("print the model: %w", err)
	}
	return b, nil
}

var interpolationRE = regexp.MustCompile(`interpolating services\.([^.]+)\.([^.:\s]+)`)

var cycleRE = regexp.MustCompile(`cycle detected: ([^ ]+) ->`)

var undefinedDepRE = regexp.MustCompile(`service "([^"]+)" depends on undefined service`)

// loadError makes a loader error name the file, and the line where it
// can be found, when the library's message does not.
func loadError(files []string, err error) error {
	msg := err.Error()
	if m := cycleRE.FindStringSubmatch(msg); m != nil {
		p := &types.Project{ComposeFiles: files}
		return errdefs.Invalid("%s: %s: remove one of these depends_on", locate(p, m[1], "depends_on"), msg)
	}
	if m := undefinedDepRE.FindStringSubmatch(msg); m != nil {
		p := &types.Project{ComposeFiles: files}
		return errdefs.Invalid("%s: %s", locate(p, m[1], "depends_on"), msg)
	}
	if m := interpolationRE.FindStringSubmatch(msg); m != nil {
		p := &types.Project{ComposeFiles: files}
		return errdefs.Invalid("%s: %s", locate(p, m[1], m[2]), msg)
	}
	for _, f := range files {
		if strings.Contains(msg, f) {
			return errdefs.Invalid("%s", msg)
		}
	}
	return errdefs.Invalid("%s: %s", strings.Join(files, ", "), msg)
}
