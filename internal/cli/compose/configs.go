package compose

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"skiff.dev/skiff/api/errdefs"
)

// copiedConfig reports whether the service config c is copied into the
// container before it starts (see PutConfigs) rather than bind mounted:
// a config from the environment or inline content:, and a file config
// with a mode, uid or gid.
func copiedConfig(p *types.Project, c types.ServiceConfigObjConfig) bool {
	d, ok := p.Configs[c.Source]
	if !ok || bool(d.External) {
		return false
	}
	return d.File == "" || c.Mode != nil || c.UID != "" || c.GID != ""
}

// configTarget is where the service config c shows in the container: its
// target, else /SOURCE, as docker compose places it.
func configTarget(c types.ServiceConfigObjConfig) string {
	if c.Target == "" {
		return "/" + c.Source
	}
	if !path.IsAbs(c.Target) {
		return path.Clean("/" + c.Target)
	}
	return path.Clean(c.Target)
}

// configArchive is a tar of the configs of s that are copied (see
// copiedConfig), each a file at its target path relative to /, with its
// mode (default 0444), uid and gid (default 0). It is nil when s has
// none.
func configArchive(p *types.Project, s types.ServiceConfig) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	n := 0
	for _, c := range s.Configs {
		if !copiedConfig(p, c) {
			continue
		}
		d := p.Configs[c.Source]
		content := []byte(d.Content)
		if d.File != "" {
			b, err := os.ReadFile(d.File)
			if err != nil {
				return nil, errdefs.Invalid("service %s: config %s: %v", s.Name, c.Source, err)
			}
			content = b
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(configTarget(c), "/"),
			Size: int64(len(content)), Mode: 0o444, ModTime: time.Now()}
		if c.Mode != nil {
			hdr.Mode = int64(*c.Mode) & 0o7777
		}
		for _, id := range []struct {
			what, v string
			to      *int
		}{{"uid", c.UID, &hdr.Uid}, {"gid", c.GID, &hdr.Gid}} {
			if id.v == "" {
				continue
			}
			v, err := strconv.ParseUint(id.v, 10, 32)
			if err != nil {
				return nil, errdefs.Invalid("service %s: config %s: %s %q must be a number", s.Name, c.Source, id.what, id.v)
			}
			*id.to = int(v)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		tw.Write(content)
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return buf.Bytes(), tw.Close()
}

// PutConfigs copies the configs of s from the environment, inline
// content or a file with a mode, uid or gid into the created container
// id, at their target paths, before it starts (as docker compose does):
// the files of the image next to them stay.
func (e *Engine) PutConfigs(ctx context.Context, p *types.Project, s types.ServiceConfig, id string) error {
	archive, err := configArchive(p, s)
	if err != nil || archive == nil {
		return err
	}
	if err := e.C.PutArchive(ctx, id, "/", bytes.NewReader(archive)); err != nil {
		return fmt.Errorf("service %s: put its configs into the container: %w", s.Name, err)
	}
	return nil
}

// startWithConfigs puts the configs of s into the created container id
// and starts it.
func (e *Engine) startWithConfigs(ctx context.Context, p *types.Project, s types.ServiceConfig, id string) error {
	if err := e.PutConfigs(ctx, p, s, id); err != nil {
		return err
	}
	if err := e.C.Start(ctx, id); err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	return nil
}

// serviceHash is the config hash label of s's containers: ConfigHash,
// and when s has copied configs (see copiedConfig) their contents too,
// so that a changed environment variable or config file recreates the
// service on up as a changed key does. An unreadable file counts as
// empty here; creating the container reports it.
func serviceHash(p *types.Project, s types.ServiceConfig) string {
	h := ConfigHash(s)
	sum := sha256.New()
	n := 0
	for _, c := range s.Configs {
		if !copiedConfig(p, c) {
			continue
		}
		d := p.Configs[c.Source]
		content := []byte(d.Content)
		if d.File != "" {
			content, _ = os.ReadFile(d.File)
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", c.Source, len(content))
		sum.Write(content)
		n++
	}
	if n == 0 {
		return h
	}
	sum.Write([]byte(h))
	return hex.EncodeToString(sum.Sum(nil))
}
