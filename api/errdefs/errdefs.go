// Package errdefs defines the few error categories skiff uses everywhere.
//
// Packages wrap one of these sentinels with %w at the point where the
// category is first known; callers test with errors.Is. Only the apiserver
// turns a category into an HTTP status, and only the API client turns a
// status back into a category, so a category survives the wire.
package errdefs

import (
	"errors"
	"fmt"
)

// The categories. Each names what the caller can do about the error.
var (
	// ErrInvalid: the request or input is malformed; fix it and retry.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the object exists or is in a state that forbids the request.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: a dependency (runtime, registry, disk) failed; retrying may help.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthorized: credentials are missing or wrong.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotImplemented: the feature is not supported on this host or build.
	ErrNotImplemented = errors.New("not implemented")
)

// Invalid returns an ErrInvalid error with a formatted message.
func Invalid(format string, args ...any) error { return wrap(ErrInvalid, format, args...) }

// NotFound returns an ErrNotFound error with a formatted message.
func NotFound(format string, args ...any) error { return wrap(ErrNotFound, format, args...) }

// Conflict returns an ErrConflict error with a formatted message.
func Conflict(format string, args ...any) error { return wrap(ErrConflict, format, args...) }

// Unavailable returns an ErrUnavailable error with a formatted message.
func Unavailable(format string, args ...any) error { return wrap(ErrUnavailable, format, args...) }

// Unauthorized returns an ErrUnauthorized error with a formatted message.
func Unauthorized(format string, args ...any) error { return wrap(ErrUnauthorized, format, args...) }

// NotImplemented returns an ErrNotImplemented error with a formatted message.
func NotImplemented(format string, args ...any) error {
	return wrap(ErrNotImplemented, format, args...)
}

// categorized keeps the message of the error it was built with, while
// errors.Is still reports the category.
type categorized struct {
	cat error
	err error
}

func (e *categorized) Error() string { return e.err.Error() }
func (e *categorized) Unwrap() []error {
	return []error{e.err, e.cat}
}

func wrap(cat error, format string, args ...any) error {
	return &categorized{cat: cat, err: fmt.Errorf(format, args...)}
}

// WithCategory marks err as belonging to cat without changing its message.
// A nil err stays nil.
func WithCategory(cat, err error) error {
	if err == nil {
		return nil
	}
	return &categorized{cat: cat, err: err}
}

// Category returns the category err belongs to, or nil if none.
func Category(err error) error {
	for _, c := range []error{ErrInvalid, ErrNotFound, ErrConflict, ErrUnavailable, ErrUnauthorized, ErrNotImplemented} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}
