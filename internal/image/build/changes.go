package build

import (
	"context"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"skiff.dev/skiff/api/errdefs"
)

// ChangeInstructions are the Dockerfile instructions ApplyChanges accepts,
// as `docker import --change` does.
const ChangeInstructions = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME and STOPSIGNAL"

// ApplyChanges applies Dockerfile instructions, one per change, to an
// image configuration, as `docker import --change` does: CMD, ENTRYPOINT,
// ENV, EXPOSE, LABEL, USER, WORKDIR (only recorded: nothing is created),
// VOLUME and STOPSIGNAL, with $VAR expansion from the ENV set so far.
// Any other instruction, or a change that is not one instruction, is an
// errdefs.ErrInvalid error naming the change.
func ApplyChanges(cfg v1.Config, changes []string) (out v1.Config, err error) {
	b := &builder{shlex: &lexer{l: shell.NewLex('\\')}, consumed: map[string]bool{}}
	s := &stage{cfg: &v1.ConfigFile{Config: cfg}, args: &kv{}}
	for _, ch := range changes {
		if err := applyChange(b, s, ch); err != nil {
			return v1.Config{}, err
		}
	}
	return s.cfg.Config, nil
}

func applyChange(b *builder, s *stage, ch string) (err error) {
	fail := func(format string, args ...any) error {
		return errdefs.Invalid("--change %q: "+format, append([]any{ch}, args...)...)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fail("cannot parse: %v", r)
		}
	}()
	res, err := parser.Parse(strings.NewReader(ch))
	if err == nil && len(res.AST.Children) != 1 || strings.TrimSpace(ch) == "" {
		return fail("give one Dockerfile instruction per --change, such as 'CMD [\"sh\"]'")
	}
	if err != nil {
		return fail("%v", err)
	}
	if n := res.AST.Children[0]; strings.EqualFold(n.Value, "from") {
		return fail("FROM cannot be applied by an import; only %s can", ChangeInstructions)
	}
	c, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return fail("%v", err)
	}
	switch c := c.(type) {
	case *instructions.CmdCommand, *instructions.EntrypointCommand, *instructions.EnvCommand,
		*instructions.ExposeCommand, *instructions.LabelCommand, *instructions.UserCommand,
		*instructions.VolumeCommand, *instructions.StopSignalCommand:
	case *instructions.WorkdirCommand:
		if err := b.expand(s, c); err != nil {
			return fail("%v", err)
		}
		p := c.Path
		if !path.IsAbs(p) {
			p = path.Join("/", s.cfg.Config.WorkingDir, p)
		}
		s.cfg.Config.WorkingDir = path.Clean(p)
		return nil
	default:
		return fail("%s cannot be applied by an import; only %s can", strings.ToUpper(c.Name()), ChangeInstructions)
	}
	if err := b.dispatch(context.Background(), s, c); err != nil {
		return fail("%v", err)
	}
	return nil
}
