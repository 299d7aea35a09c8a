package cli

import (
	"path/filepath"

	"skiff.dev/skiff/api"
)

// parseMountFlag parses one --mount: docker's KEY=VALUE syntax (see
// api.ParseMount), a relative bind source made absolute here and a
// volume without a source given an anonymous volume's name.
func parseMountFlag(s string) (api.Mount, error) {
	m, err := api.ParseMount(s)
	if err != nil {
		return api.Mount{}, err
	}
	switch {
	case m.Type == api.MountBind:
		if m.Source, err = filepath.Abs(m.Source); err != nil {
			return api.Mount{}, err
		}
	case m.Type == api.MountVolume && m.Source == "":
		m.Source = api.AnonymousVolume()
	}
	return m, nil
}
