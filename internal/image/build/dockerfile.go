package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"skiff.dev/skiff/api/errdefs"
)

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM and
// the stages with their typed instructions.
type dockerfile struct {
	name     string // file name used in messages ("Dockerfile")
	escape   rune
	metaArgs []*instructions.ArgCommand
	stages   []*stageDef
}

// stageDef is one FROM and the instructions up to the next.
type stageDef struct {
	index    int
	name     string // lowercased AS name, or ""
	baseName string // as written, before ARG expansion
	platform string // FROM --platform, before expansion
	code     string // the FROM line
	loc      []parser.Range
	commands []instructions.Command
}

// label names the stage in messages.
func (s *stageDef) label() string {
	if s.name != "" {
		return s.name
	}
	return fmt.Sprintf("%d", s.index)
}

// unsupported is the error for an instruction skiff cannot execute; the
// caller adds the line.
func unsupported(name string) error {
	return errdefs.Invalid("%s is not supported yet", strings.ToUpper(name))
}

// maxDockerfileSize bounds the Dockerfile read into memory.
const maxDockerfileSize = 4 << 20

// parseDockerfile parses data with BuildKit's parser into stages. Lint
// warnings go to warn.
func parseDockerfile(name string, data []byte, warn func(string)) (df *dockerfile, err error) {
	df = &dockerfile{name: name}
	if len(data) > maxDockerfileSize {
		return nil, errdefs.Invalid("%s is larger than %d bytes", name, maxDockerfileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errdefs.Invalid("%s is empty: it needs at least a FROM line", name)
	}
	defer func() {
		if r := recover(); r != nil {
			df, err = nil, errdefs.Invalid("%s: cannot parse: %v", name, r)
		}
	}()
	lint := linter.New(&linter.Config{Warn: func(_, _, _, msg string, loc []parser.Range) {
		if warn != nil {
			warn(df.prefix(loc) + msg)
		}
	}})
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, df.errAt(nil, errdefs.WithCategory(errdefs.ErrInvalid, err))
	}
	df.escape = res.EscapeToken
	for _, w := range res.Warnings {
		if warn != nil {
			warn(name + ": " + w.Short)
		}
	}
	var cur *stageDef
	for _, n := range res.AST.Children {
		if !utf8.ValidString(n.Original) || !heredocsValid(n) {
			return nil, df.errAt(n.Location(), errdefs.Invalid("the instruction is not valid UTF-8: save the Dockerfile as UTF-8"))
		}
		v, err := instructions.ParseInstructionWithLinter(n, lint)
		if err != nil {
			return nil, df.errAt(n.Location(), errdefs.WithCategory(errdefs.ErrInvalid, err))
		}
		switch c := v.(type) {
		case *instructions.Stage:
			for _, s := range df.stages {
				if c.Name != "" && s.name == c.Name {
					return nil, df.errAt(c.Location, errdefs.Invalid("stage name %q is already used by the stage at line %d: give each stage its own name", c.Name, line(s.loc)))
				}
			}
			cur = &stageDef{
				index:    len(df.stages),
				name:     c.Name,
				baseName: c.BaseName,
				platform: c.Platform,
				code:     c.SourceCode,
				loc:      c.Location,
			}
			df.stages = append(df.stages, cur)
		case *instructions.ArgCommand:
			if cur == nil {
				df.metaArgs = append(df.metaArgs, c)
			} else {
				cur.commands = append(cur.commands, c)
			}
		case instructions.Command:
			if cur == nil {
				return nil, df.errAt(n.Location(), errdefs.Invalid("%s before FROM: a Dockerfile must start with FROM (only ARG may come before it)", strings.ToUpper(n.Value)))
			}
			cur.commands = append(cur.commands, c)
		default:
			return nil, df.errAt(n.Location(), errdefs.Invalid("unexpected instruction %s", n.Value))
		}
	}
	if len(df.stages) == 0 {
		return nil, errdefs.Invalid("%s has no FROM line: start the build with FROM scratch or FROM <image>", name)
	}
	return df, nil
}

// heredocsValid reports whether a node's heredocs are valid UTF-8 (the
// shell lexer complains on stderr otherwise).
func heredocsValid(n *parser.Node) bool {
	for _, h := range n.Heredocs {
		if !utf8.ValidString(h.Content) {
			return false
		}
	}
	return true
}

// line returns the first line of a location, or 0.
func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// prefix is "Dockerfile:N: " for a location, "Dockerfile: " without one.
func (df *dockerfile) prefix(loc []parser.Range) string {
	if l := line(loc); l > 0 {
		return fmt.Sprintf("%s:%d: ", df.name, l)
	}
	return df.name + ": "
}

// errAt prefixes err with the Dockerfile line it is about, taken from err
// itself when BuildKit attached one, else from loc. The category of err is
// kept; an error without one is ErrInvalid.
func (df *dockerfile) errAt(loc []parser.Range, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && line(le.Locations[0]) > 0 {
		loc = le.Locations[0]
		inner := le.Unwrap()
		cat := errdefs.Category(err)
		if cat == nil {
			cat = errdefs.ErrInvalid
		}
		return errdefs.WithCategory(cat, fmt.Errorf("%s%w", df.prefix(loc), inner))
	}
	if errdefs.Category(err) == nil {
		err = errdefs.WithCategory(errdefs.ErrInvalid, err)
	}
	return errdefs.WithCategory(errdefs.Category(err), fmt.Errorf("%s%w", df.prefix(loc), err))
}
