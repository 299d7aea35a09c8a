package app

import (
	"errors"
	"fmt"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// FieldError is one problem with one field of an App document.
type FieldError struct {
	// Document is the 1-based index of the document in a multi-document
	// YAML stream; 0 when the stream held one document or the App did not
	// come from YAML.
	Document int
	// Line is the 1-based line of the field (or of its nearest written
	// ancestor) in the YAML stream; 0 when unknown.
	Line int
	// Path is the field's path: "spec.traffic[1].percent",
	// "metadata.labels[team]". Empty for a whole document.
	Path string
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

// Error formats the error as "document 2: line 7: spec.port: must be
// 1..65535", leaving out the parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Document > 0 {
		fmt.Fprintf(&b, "document %d: ", e.Document)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// FieldErrors is every problem found in one or more App documents, in the
// order of the fields. It is not itself an error: Err turns it into one.
type FieldErrors []*FieldError

// add appends a problem with the field at path.
func (l *FieldErrors) add(path, format string, args ...any) {
	*l = append(*l, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil for an empty list, and otherwise an error that lists
// every problem, one per line, and is classified errdefs.ErrInvalid.
// errors.As finds the first *FieldError in it; FieldErrorsOf returns all.
func (l FieldErrors) Err() error {
	if len(l) == 0 {
		return nil
	}
	return &listError{errs: l}
}

// FieldErrorsOf returns the field errors an error holds, or nil when it
// holds none.
func FieldErrorsOf(err error) FieldErrors {
	var le *listError
	if errors.As(err, &le) {
		return le.errs
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return FieldErrors{fe}
	}
	return nil
}

// listError is FieldErrors as an error.
type listError struct {
	errs FieldErrors
}

func (e *listError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, fe := range e.errs {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "\n")
}

func (e *listError) Unwrap() []error {
	out := make([]error, 0, len(e.errs)+1)
	for _, fe := range e.errs {
		out = append(out, fe)
	}
	return append(out, errdefs.ErrInvalid)
}

// Field path builders: child("spec", "port") is "spec.port", index("spec.env",
// 2) is "spec.env[2]", key("metadata.labels", "team") is
// "metadata.labels[team]".

func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func key(path, k string) string { return path + "[" + k + "]" }
