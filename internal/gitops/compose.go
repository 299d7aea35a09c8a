package gitops

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/compose"
)

// composeBase and composeOverride are the file names of a compose project
// in a source, as docker compose looks for them in a directory.
var (
	composeBase     = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}
	composeOverride = []string{"compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml", "docker-compose.override.yml"}
)

func isComposeFile(name string) bool {
	return slices.Contains(composeBase, path.Base(name)) || slices.Contains(composeOverride, path.Base(name))
}

// composeApps loads the compose projects among files, one per directory
// (its compose.yaml and compose.override.yaml, merged), and returns the
// Apps of the services marked x-skiff: {app: true}, as skiff compose up
// makes them, defaulted and checked. Other services are not run by a
// source. The project's name is its name: key, else its directory's.
func composeApps(files []app.File) ([]api.App, error) {
	byDir := map[string][]app.File{}
	var dirs []string
	for _, f := range files {
		d := path.Dir(f.Name)
		if byDir[d] == nil {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], f)
	}
	sort.Strings(dirs)
	var out []api.App
	for _, d := range dirs {
		apps, err := composeProject(d, byDir[d])
		if err != nil {
			return nil, fmt.Errorf("%w: nothing was applied", err)
		}
		out = append(out, apps...)
	}
	return out, nil
}

// composeProject loads the project of one directory.
func composeProject(dir string, files []app.File) ([]api.App, error) {
	var base, over []app.File
	for _, f := range files {
		if slices.Contains(composeBase, path.Base(f.Name)) {
			base = append(base, f)
		} else {
			over = append(over, f)
		}
	}
	switch {
	case len(base) == 0:
		return nil, errdefs.Invalid("%s: an override file with no compose.yaml beside it: add the compose.yaml or remove the override", over[0].Name)
	case len(base) > 1:
		return nil, errdefs.Invalid("%s and %s: two compose files in one directory: keep one", base[0].Name, base[1].Name)
	case len(over) > 1:
		return nil, errdefs.Invalid("%s and %s: two override files in one directory: keep one", over[0].Name, over[1].Name)
	}
	details := types.ConfigDetails{WorkingDir: "/" + dir, Environment: types.Mapping{}}
	for _, f := range append(base, over...) {
		if err := selfContained(f); err != nil {
			return nil, err
		}
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f.Name, Content: f.Data})
	}
	name := ""
	if dir != "." {
		name = loader.NormalizeProjectName(path.Base(dir))
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName(name, false)
	})
	if err == nil && p.Name == "" || err != nil && strings.Contains(err.Error(), "project name must not be empty") {
		return nil, errdefs.Invalid("%s: the project has no name: add a top-level name: key (a compose file at the repository's root has no directory to be named after)", base[0].Name)
	}
	if err != nil {
		return nil, composeError(base[0], err)
	}
	svcs, err := compose.AppServices(p, false)
	if err != nil {
		return nil, errdefs.Invalid("%s: %v", base[0].Name, err)
	}
	var out []api.App
	for _, s := range svcs {
		a, err := compose.AppFor(p, p.Services[s])
		if err != nil {
			return nil, errdefs.Invalid("%s: service %s: %v", base[0].Name, s, err)
		}
		app.SetDefaults(&a)
		if fes := app.Validate(a); len(fes) > 0 {
			return nil, errdefs.Invalid("%s: service %s: the App it makes is not valid: %v", base[0].Name, s, fes)
		}
		out = append(out, a)
	}
	return out, nil
}

// selfContained refuses the keys that read other files at load time
// (include, extends with a file, env_file, label_file): a commit's
// compose file is loaded on the daemon's host, which is not the
// repository, and must not read its files.
func selfContained(f app.File) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(f.Data, &doc); err != nil {
		return errdefs.Invalid("%s: %s", f.Name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	top := doc.Content[0]
	refuse := func(n *yaml.Node, key string) error {
		return errdefs.Invalid("%s: line %d: %s: a compose file in a source cannot read other files: put what it reads into the file itself", f.Name, n.Line, key)
	}
	if k := mapKey(top, "include"); k != nil {
		return refuse(k, "include")
	}
	svcs := mapValue(top, "services")
	if svcs == nil || svcs.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(svcs.Content); i += 2 {
		name, svc := svcs.Content[i].Value, svcs.Content[i+1]
		for _, key := range []string{"env_file", "label_file"} {
			if k := mapKey(svc, key); k != nil {
				return refuse(k, "services."+name+"."+key)
			}
		}
		if ext := mapValue(svc, "extends"); ext != nil && mapKey(ext, "file") != nil {
			return refuse(mapKey(ext, "file"), "services."+name+".extends.file")
		}
	}
	return nil
}

// mapKey and mapValue are the key node and value node of key in the
// mapping m, or nil.
var mapKey, mapValue = compose.YAMLKey, compose.YAMLValue

var servicePathRE = regexp.MustCompile(`services\.([A-Za-z0-9._-]+?)(?:\.([A-Za-z0-9_]+))?(?:\s|$|:)`)

// composeError makes a load error name the file and, when it names a
// service (and key), that line.
func composeError(f app.File, err error) error {
	msg := err.Error()
	where := f.Name
	if m := servicePathRE.FindStringSubmatch(msg); m != nil {
		var doc yaml.Node
		if yaml.Unmarshal(f.Data, &doc) == nil && len(doc.Content) > 0 {
			svcs := mapValue(doc.Content[0], "services")
			if k := mapKey(svcs, m[1]); k != nil {
				line := k.Line
				if kk := mapKey(mapValue(svcs, m[1]), m[2]); m[2] != "" && kk != nil {
					line = kk.Line
				}
				where = fmt.Sprintf("%s: line %d", f.Name, line)
			}
		}
	}
	return errdefs.Invalid("%s: %s", where, msg)
}
