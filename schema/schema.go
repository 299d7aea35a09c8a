// Package schema holds the JSON Schema (draft 2020-12) of skiff's App
// resource, for editors and for tools that serve or print it.
//
// app.schema.json is generated from the api types and their doc comments
// by the tests of api/app; do not edit it by hand:
//
//	go test ./api/app -run TestSchema -update
//
// To have an editor that runs yaml-language-server (VS Code's YAML
// extension, Neovim, Helix, …) check and complete an App file, start the
// file with a modeline naming a copy of app.schema.json, relative to the
// file or absolute:
//
//	# yaml-language-server: $schema=../schema/app.schema.json
//
// The schema's $id (https://skiff.dev/schema/app.schema.json) names it;
// it is not promised to be downloadable.
package schema

import _ "embed"

// AppJSON is the JSON Schema of an App document (schema/app.schema.json).
//
//go:embed app.schema.json
var AppJSON []byte
