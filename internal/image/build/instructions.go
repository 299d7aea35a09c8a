package build

import (
	"archive/tar"
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"skiff.dev/skiff/api/errdefs"
)

// expand replaces $VARs in the words of c, as docker does before running
// an instruction (ARG expands its own default values).
func (b *builder) expand(s *stage, c instructions.Command) error {
	if _, isArg := c.(*instructions.ArgCommand); isArg {
		return nil
	}
	env := s.env()
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		err := ex.Expand(func(word string) (string, error) {
			w, _, err := b.shlex.ProcessWord(word, env)
			return w, err
		})
		if err != nil {
			return errdefs.Invalid("%s: %w", strings.ToUpper(c.Name()), err)
		}
	}
	if ex, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		lex := shell.NewLex('\\')
		lex.SkipProcessQuotes = true
		err := ex.ExpandRaw(func(word string) (string, error) {
			w, _, err := lex.ProcessWord(word, env)
			return w, err
		})
		if err != nil {
			return errdefs.Invalid("%s: %w", strings.ToUpper(c.Name()), err)
		}
	}
	return nil
}

// dispatch runs one instruction on a stage. Errors do not carry the
// Dockerfile line; the caller adds it.
func (b *builder) dispatch(ctx context.Context, s *stage, c instructions.Command) error {
	if err := b.expand(s, c); err != nil {
		return err
	}
	cfg := &s.cfg.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, e := range c.Env {
			if e.Key == "" {
				return errdefs.Invalid("ENV: a variable name is empty")
			}
			cfg.Env = envSet(cfg.Env, e.Key, e.Value)
			parts = append(parts, e.Key+"="+e.Value)
		}
		s.history("ENV "+strings.Join(parts, " "), false)
	case *instructions.ArgCommand:
		return b.arg(s, c)
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		var parts []string
		for _, l := range c.Labels {
			cfg.Labels[l.Key] = l.Value
			parts = append(parts, l.Key+"="+l.Value)
		}
		s.history("LABEL "+strings.Join(parts, " "), false)
	case *instructions.MaintainerCommand:
		s.cfg.Author = c.Maintainer
		s.history("MAINTAINER "+c.Maintainer, false)
	case *instructions.UserCommand:
		if c.User == "" {
			return errdefs.Invalid("USER: the user is empty after variable expansion")
		}
		cfg.User = c.User
		s.history("USER "+c.User, false)
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, s, c.Path)
	case *instructions.ExposeCommand:
		var words []string
		for _, p := range c.Ports {
			ws, err := b.shlex.ProcessWords(p, s.env())
			if err != nil {
				return errdefs.Invalid("EXPOSE: %w", err)
			}
			words = append(words, ws...)
		}
		ports, err := parsePorts(words)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
		s.history("EXPOSE "+strings.Join(ports, " "), false)
	case *instructions.StopSignalCommand:
		if err := checkSignal(c.Signal); err != nil {
			return err
		}
		cfg.StopSignal = c.Signal
		s.history("STOPSIGNAL "+c.Signal, false)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errdefs.Invalid("VOLUME: a path is empty")
			}
			cfg.Volumes[v] = struct{}{}
		}
		s.history(fmt.Sprintf("VOLUME %v", c.Volumes), false)
	case *instructions.ShellCommand:
		cfg.Shell = c.Shell
		s.history(fmt.Sprintf("SHELL %q", c.Shell), false)
	case *instructions.CmdCommand:
		args := b.withShell(s, c.ShellDependantCmdLine)
		cfg.Cmd = args
		s.cmdSet = true
		s.history(fmt.Sprintf("CMD %q", args), false)
	case *instructions.EntrypointCommand:
		args := b.withShell(s, c.ShellDependantCmdLine)
		cfg.Entrypoint = args
		if !s.cmdSet {
			// As docker: an ENTRYPOINT resets the CMD inherited from the base.
			cfg.Cmd = nil
		}
		s.history(fmt.Sprintf("ENTRYPOINT %q", args), false)
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{
			Test:        h.Test,
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
		s.history(fmt.Sprintf("HEALTHCHECK %q", h.Test), false)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		s.history("ONBUILD "+c.Expression, false)
	case *instructions.RunCommand:
		return b.runStep(ctx, s, c)
	case *instructions.CopyCommand:
		return b.copy(ctx, s, copyOp{
			name: "COPY", srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			from: c.From, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, parents: c.Parents,
		})
	case *instructions.AddCommand:
		unpack := true
		if c.Unpack != nil {
			unpack = *c.Unpack
		}
		return b.copy(ctx, s, copyOp{
			name: "ADD", add: true, srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, unpack: unpack, checksum: c.Checksum,
		})
	default:
		return unsupported(c.Name())
	}
	return nil
}

// withShell turns a shell-form command line into [shell..., line], with
// the stage's SHELL or /bin/sh -c, as docker does.
func (b *builder) withShell(s *stage, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return c.CmdLine
	}
	sh := []string{"/bin/sh", "-c"}
	if len(s.cfg.Config.Shell) > 0 {
		sh = append([]string(nil), s.cfg.Config.Shell...)
	}
	return append(sh, strings.Join(c.CmdLine, " "))
}

// arg declares stage ARGs: a --build-arg wins, then the default, then the
// value of the same ARG before the first FROM.
func (b *builder) arg(s *stage, c *instructions.ArgCommand) error {
	var parts []string
	for _, a := range c.Args {
		b.mu.Lock()
		b.consumed[a.Key] = true
		b.mu.Unlock()
		var val *string
		if v, ok := b.opts.BuildArgs[a.Key]; ok {
			val = &v
		} else if a.Value != nil {
			v, _, err := b.shlex.ProcessWord(*a.Value, s.env())
			if err != nil {
				return errdefs.Invalid("ARG %s: %w", a.Key, err)
			}
			val = &v
		} else if v, ok := b.global.Get(a.Key); ok {
			val = &v
		}
		part := a.Key
		if val != nil {
			s.args.Set(a.Key, *val)
			part += "=" + *val
		}
		parts = append(parts, part)
	}
	s.history("ARG "+strings.Join(parts, " "), false)
	return nil
}

// workdir sets the working directory and creates it, owned by the USER in
// effect, when the image lacks it.
func (b *builder) workdir(ctx context.Context, s *stage, p string) error {
	if p == "" {
		return errdefs.Invalid("WORKDIR: the path is empty after variable expansion")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return errdefs.Invalid("WORKDIR: the path %q holds a NUL byte", p)
	}
	if !path.IsAbs(p) {
		base := s.cfg.Config.WorkingDir
		if base == "" {
			base = "/"
		}
		p = path.Join(base, p)
	}
	p = path.Clean(p)
	s.cfg.Config.WorkingDir = p
	if p == "/" {
		s.history("WORKDIR /", false)
		return nil
	}
	key, err := b.cacheKey(s, stepKey{Op: "WORKDIR " + p, User: s.cfg.Config.User})
	if err != nil {
		return err
	}
	if hit, err := b.cached(ctx, s, key, "WORKDIR "+p); hit || err != nil {
		return err
	}
	t, err := b.stageTree(ctx, s)
	if err != nil {
		return err
	}
	if n, _, err := t.lookup(p, true); err == nil && n.isDir() {
		b.remember(ctx, key, nil, time.Time{})
		s.history("WORKDIR "+p, false)
		return nil
	}
	uid, gid := 0, 0
	if u := s.cfg.Config.User; u != "" {
		uid, gid, _ = b.owner(ctx, s, u, false)
	}
	gen := b.nextGen()
	mtime := b.newTime()
	_, _, err = t.mkdirAll(p, func() *node {
		return &node{typ: tar.TypeDir, mode: 0o755, uid: uid, gid: gid, mtime: mtime, children: map[string]*node{}, gen: gen}
	})
	if err != nil {
		return errdefs.Invalid("WORKDIR %s: cannot create it: %w", p, err)
	}
	return b.commit(ctx, s, gen, "WORKDIR "+p, key)
}

// trigger runs one ONBUILD instruction the base image registered, at the
// FROM line.
func (b *builder) trigger(ctx context.Context, s *stage, expr string) error {
	at := func(err error) error {
		return b.df.errAt(s.def.loc, fmt.Errorf("ONBUILD %s (from the base image): %w", expr, err))
	}
	res, err := parser.Parse(strings.NewReader(expr))
	if err != nil {
		return at(errdefs.Invalid("%s", err.Error()))
	}
	// The FROM step ends here: a trigger's cache hit must not mark it.
	b.stepDone(s, nil)
	for _, n := range res.AST.Children {
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return at(errdefs.Invalid("%s", err.Error()))
		}
		if rc, ok := c.(*instructions.RunCommand); ok {
			deps, err := b.mountDeps(rc, s.def.index)
			if err != nil {
				return at(err)
			}
			for _, dep := range deps {
				if err := b.need(ctx, dep); err != nil {
					return err
				}
			}
		}
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			dep, _, err := b.copyFrom(cp.From, s.def.index)
			if err != nil {
				return at(err)
			}
			if dep != nil {
				if err := b.need(ctx, dep); err != nil {
					return err
				}
			}
		}
		if err := b.dispatch(ctx, s, c); err != nil {
			return at(err)
		}
	}
	return nil
}
