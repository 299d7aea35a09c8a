// Package app is the App resource model: reading App documents, their
// defaults and validation, their status conditions, and the revisions
// made from them. The wire types live in package api (api/app.go); this
// package holds the rules over them. It is pure: no I/O besides the
// reader it is given, no clock (callers pass now), no global state.
//
// The contract, by file:
//
//   - decode.go: Decode reads a multi-document YAML stream strictly
//     (unknown fields, wrong types, duplicate keys, wrong apiVersion or
//     kind are errors, each with its document, line and field path).
//     Load also applies defaults and validates, all documents or none.
//   - app_defaults.go: SetDefaults fills in what the user left out;
//     idempotent, never overwrites a set value.
//   - app_validation.go: Validate returns every problem as a FieldError
//     with a path such as "spec.traffic[1].percent"; FieldErrors.Err is
//     errdefs.ErrInvalid.
//   - app_lifecycle.go: condition helpers (MarkReady, MarkDegraded, …);
//     LastTransitionTime changes only when a condition's status does.
//   - revision.go: the runnable part of a spec (RevisionSpecOf), its
//     stable Hash, NeedsNewRevision, and revision names (shop-00003).
//   - quantity.go: the Kubernetes quantity subset used for cpu and memory.
//   - diff.go: Diff, a unified diff of two Apps' YAML forms.
//   - yaml.go: MarshalYAML, and the positioned value tree Decode uses.
//
// schema/app.schema.json, the JSON Schema editors use, is generated from
// the api types and their doc comments by this package's tests
// (go test ./api/app -run TestSchema -update rewrites it), and every
// testdata example is validated against it. docs/app-reference.md is the
// user's reference, with each field's Kubernetes counterpart.
package app
