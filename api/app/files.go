package app

import (
	"bytes"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// File is one manifest file: the name it is reported under and its
// contents.
type File struct {
	Name string
	Data []byte
}

// LoadFiles loads the Apps of every file as Load does. Every App of every
// file is checked before anything is returned: one bad document stops
// them all, with each problem named by file, document, line and field,
// and an App defined twice is refused too. Errors are errdefs.ErrInvalid
// and end with "nothing was applied".
func LoadFiles(files []File) ([]api.App, error) {
	var all []api.App
	var problems []string
	for _, f := range files {
		apps, err := Load(bytes.NewReader(f.Data))
		if err != nil {
			if fes := FieldErrorsOf(err); len(fes) > 0 {
				for _, fe := range fes {
					problems = append(problems, f.Name+": "+fe.Error())
				}
			} else {
				problems = append(problems, f.Name+": "+err.Error())
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
