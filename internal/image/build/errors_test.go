package build

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
)

// writeContext writes a Dockerfile and files into a new context directory.
func writeContext(t testing.TB, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if dockerfile != "" {
		writeFile(t, filepath.Join(dir, "Dockerfile"), []byte(dockerfile))
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, []byte(body))
	}
	return dir
}

func TestBuildErrors(t *testing.T) {
	evilTar := string(makeTar(t, []tarEntry{{name: "../../etc/evil", body: "x"}}))
	whiteoutTar := string(makeTar(t, []tarEntry{{name: "etc/.wh.passwd"}}))
	linkTar := string(makeTar(t, []tarEntry{{name: "a", typ: tar.TypeLink, link: "missing"}}))
	tests := []struct {
		name       string
		dockerfile string
		files      map[string]string
		opts       Options
		cat        error
		want       []string // substrings of the message
	}{
		{
			name:       "run names the line",
			dockerfile: "FROM scratch\nCOPY a /a\n\nRUN make\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:4: RUN needs a container runtime"},
		},
		{
			name:       "run in a continued line",
			dockerfile: "FROM scratch\nENV A=1 \\\n    B=2\nRUN echo \\\n  hi\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:4: RUN needs a container runtime"},
		},
		{
			name:       "run in a stage the target needs",
			dockerfile: "FROM scratch AS build\nRUN go build\nFROM scratch\nCOPY --from=build /app /app\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN needs a container runtime"},
		},
		{
			name:       "run with a cache mount but no cache directory",
			dockerfile: "FROM scratch\nRUN --mount=type=cache,target=/c make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount=type=cache: this build has no cache directory"},
		},
		{
			name:       "run with the host network",
			dockerfile: "FROM scratch\nRUN --network=host make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --network=host is not supported: build steps never share the host's network; use --network=default or --network=none"},
		},
		{
			name:       "build on the host network",
			dockerfile: "FROM scratch\n",
			opts:       Options{Network: "host"},
			cat:        errdefs.ErrInvalid,
			want:       []string{`build network "host" is not supported`},
		},
		{
			name:       "mount of an unknown type",
			dockerfile: "FROM scratch\n\nRUN --mount=type=volume,target=/v make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:3: RUN --mount: unsupported mount type \"volume\""},
		},
		{
			name:       "mount with an unknown key",
			dockerfile: "FROM scratch\nRUN --mount=type=cache,target=/c,colour=red make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount: unexpected key 'colour'"},
		},
		{
			name:       "mount without a target",
			dockerfile: "FROM scratch\nRUN --mount=type=tmpfs make\n",
			opts:       Options{CacheDir: "/nonexistent"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount=type=tmpfs: the mount has no target: add target=/path"},
		},
		{
			name:       "mount on the root",
			dockerfile: "FROM scratch\nRUN --mount=type=tmpfs,target=/ make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount=type=tmpfs: target=/ would hide the whole root filesystem"},
		},
		{
			name:       "two mounts on one target",
			dockerfile: "FROM scratch\nRUN --mount=type=tmpfs,target=/t --mount=type=bind,target=/t/ make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount=type=bind: two mounts have the target /t"},
		},
		{
			name:       "mount from a later stage",
			dockerfile: "FROM scratch\nRUN --mount=type=bind,from=later,target=/x make\nFROM scratch AS later\n",
			opts:       Options{Target: "0"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount from=later: stage \"later\" is defined after this one (line 3)"},
		},
		{
			name:       "secret mount with from",
			dockerfile: "FROM scratch\nRUN --mount=type=secret,id=tok,from=x make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount: secret mount should not have a from"},
		},
		{
			name:       "tmpfs mount with a mode",
			dockerfile: "FROM scratch\nRUN --mount=type=tmpfs,target=/t,mode=0700 make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount: mode not allowed for \"tmpfs\" type mounts"},
		},
		{
			name:       "required secret not given",
			dockerfile: "FROM scratch\nRUN --mount=type=secret,id=token,required make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount=type=secret: secret \"token\" is required but was not given: pass it with skiff image build --secret id=token,src=FILE"},
		},
		{
			name:       "secret with an id skiff cannot carry",
			dockerfile: "FROM scratch\nRUN --mount=type=secret,id=a/b make\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN --mount=type=secret: secret id \"a/b\" is not valid"},
		},
		{
			name:       "cache mount from a missing image",
			dockerfile: "FROM scratch\nRUN --mount=type=cache,target=/c,from=nosuch make\n",
			opts:       Options{CacheDir: "/nonexistent"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN needs a container runtime"},
		},
		{
			name:       "run of a heredoc script with #!",
			dockerfile: "FROM scratch\nRUN <<EOT\n#!/usr/bin/env python3\nprint(1)\nEOT\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: RUN <<EOT: a heredoc starting with #! is not supported yet"},
		},
		{
			name:       "copy of a missing file",
			dockerfile: "FROM scratch\nCOPY missing.txt /x\n",
			cat:        errdefs.ErrNotFound,
			want:       []string{"Dockerfile:2: COPY missing.txt:", `"missing.txt" was not found in the build context`},
		},
		{
			name:       "copy of an ignored file",
			dockerfile: "FROM scratch\nCOPY secret.env /x\n",
			files:      map[string]string{"secret.env": "x", ".dockerignore": "*.env\n"},
			cat:        errdefs.ErrNotFound,
			want:       []string{"Dockerfile:2:", "it is excluded by .dockerignore"},
		},
		{
			name:       "copy escaping the context",
			dockerfile: "FROM scratch\nCOPY ../x /x\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY ../x: the source is outside the build context"},
		},
		{
			name:       "copy escaping the context after cleaning",
			dockerfile: "FROM scratch\nCOPY sub/../../x /x\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", "outside the build context"},
		},
		{
			name:       "symlink escaping the context resolves inside it",
			dockerfile: "FROM scratch\nCOPY link /x\n",
			files:      map[string]string{"passwd": "inside"},
			cat:        errdefs.ErrNotFound,
			want:       []string{`Dockerfile:2: COPY link: "link" is a symlink to "../../../../../../etc/passwd", which is not in the build context`},
		},
		{
			name:       "unknown stage or image",
			dockerfile: "FROM scratch\nCOPY --from=nosuch /a /a\n",
			cat:        errdefs.ErrNotFound,
			want:       []string{"Dockerfile:2: COPY --from=nosuch: no stage has that name", `image "nosuch" is not in the local store`},
		},
		{
			name:       "stage index out of range",
			dockerfile: "FROM scratch\nCOPY --from=3 /a /a\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY --from=3: there is no stage 3 before this one"},
		},
		{
			name:       "stage defined later",
			dockerfile: "FROM scratch\nCOPY --from=later /a /a\nFROM scratch AS later\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", `stage "later" is defined after this one (line 3)`},
		},
		{
			name:       "variable in --from",
			dockerfile: "FROM scratch\nARG S=x\nCOPY --from=$S /a /a\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:3:", "variables are not expanded in --from"},
		},
		{
			name:       "unknown target",
			dockerfile: "FROM scratch AS one\nFROM scratch AS two\n",
			opts:       Options{Target: "three"},
			cat:        errdefs.ErrNotFound,
			want:       []string{`target stage "three" not found: the Dockerfile has stages one, two`},
		},
		{
			name:       "from an unknown image",
			dockerfile: "FROM scratch AS x\n\nFROM alpine:3.20\n",
			cat:        errdefs.ErrNotFound,
			want:       []string{"Dockerfile:3: FROM alpine:3.20:", "not in the local store: run `skiff image pull alpine:3.20`"},
		},
		{
			name:       "from an invalid reference",
			dockerfile: "FROM Not/Valid!\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:1: FROM Not/Valid!:", "not a valid image reference"},
		},
		{
			name:       "from an empty name",
			dockerfile: "ARG BASE\nFROM ${BASE}\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: FROM ${BASE}: the image name is empty"},
		},
		{
			name:       "from another platform",
			dockerfile: "FROM arm\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:1: FROM arm: the image is for linux/arm64 but the build is for linux/"},
		},
		{
			name:       "bad platform option",
			dockerfile: "FROM scratch\n",
			opts:       Options{Platform: "amd64"},
			cat:        errdefs.ErrInvalid,
			want:       []string{`platform "amd64" is not os/arch`},
		},
		{
			name:       "syntax: FROM without an image",
			dockerfile: "# comment\nFROM\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:"},
		},
		{
			name:       "syntax: unknown instruction",
			dockerfile: "FROM scratch\nCOPPY a b\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)"},
		},
		{
			name:       "syntax: instruction before FROM",
			dockerfile: "ENV A=b\nFROM scratch\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:1: ENV before FROM"},
		},
		{
			name:       "syntax: bad flag",
			dockerfile: "FROM scratch\nCOPY --frob=1 a b\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", "frob"},
		},
		{
			name:       "syntax: unterminated heredoc",
			dockerfile: "FROM scratch\nCOPY <<EOF /x\nhello\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", "unterminated heredoc"},
		},
		{
			name:       "syntax: empty Dockerfile",
			dockerfile: "\n# nothing\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile"},
		},
		{
			name:       "syntax: only ARGs",
			dockerfile: "ARG A=1\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile has no FROM line"},
		},
		{
			name:       "invalid UTF-8",
			dockerfile: "# caf\xe9 is fine in a comment\nFROM scratch\nCOPY caf\xe9 /x\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:3: the instruction is not valid UTF-8"},
		},
		{
			name:       "duplicate stage names",
			dockerfile: "FROM scratch AS a\nFROM scratch AS a\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", `stage name "a" is already used by the stage at line 1`},
		},
		{
			name:       "unset variable with :?",
			dockerfile: "FROM scratch\nENV A=${MUST:?must-be-set}\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: ENV:", "must-be-set"},
		},
		{
			name:       "remote ADD",
			dockerfile: "FROM scratch\nADD https://example.com/x.tar.gz /x\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: ADD https://example.com/x.tar.gz: remote sources are not supported"},
		},
		{
			name:       "git ADD",
			dockerfile: "FROM scratch\nADD git@github.com:moby/buildkit.git /src\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", "remote sources are not supported"},
		},
		{
			name:       "COPY of a URL",
			dockerfile: "FROM scratch\nCOPY http://example.com/x /x\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY http://example.com/x: COPY cannot fetch URLs"},
		},
		{
			name:       "several sources to a file",
			dockerfile: "FROM scratch\nCOPY a b /dest\n",
			files:      map[string]string{"a": "a", "b": "b"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY: with more than one source file the destination must be a directory ending in / (write /dest/)"},
		},
		{
			name:       "chown to an unknown user",
			dockerfile: "FROM scratch\nCOPY --chown=nobody a /a\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY --chown=nobody:", `user "nobody" is not in the image's /etc/passwd`},
		},
		{
			name:       "chown to an unknown group",
			dockerfile: "FROM base\nCOPY --chown=app:wheel a /a\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", `group "wheel" is not in the image's /etc/group`},
		},
		{
			name:       "bad chmod",
			dockerfile: "FROM scratch\nCOPY --chmod=u+x a /a\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY --chmod=u+x: the mode must be octal"},
		},
		{
			name:       "chmod too large",
			dockerfile: "FROM scratch\nCOPY --chmod=17777 a /a\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", "octal"},
		},
		{
			name:       "COPY --parents",
			dockerfile: "FROM scratch\nCOPY --parents a /a\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: COPY --parents is not supported yet"},
		},
		{
			name:       "bad stop signal",
			dockerfile: "FROM scratch\nSTOPSIGNAL SIGBOGUS\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: STOPSIGNAL SIGBOGUS: unknown signal"},
		},
		{
			name:       "bad port",
			dockerfile: "FROM scratch\nEXPOSE 80/tcp http\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: EXPOSE http:", "not a port number"},
		},
		{
			name:       "bad port protocol",
			dockerfile: "FROM scratch\nEXPOSE 53/dns\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: EXPOSE 53/dns: protocol \"dns\" is not tcp, udp or sctp"},
		},
		{
			name:       "archive escaping its destination",
			dockerfile: "FROM scratch\nADD evil.tar /opt/\n",
			files:      map[string]string{"evil.tar": evilTar},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: ADD evil.tar:", `archive entry "../../etc/evil" points outside the destination`},
		},
		{
			name:       "archive with a whiteout",
			dockerfile: "FROM scratch\nADD wh.tar /\n",
			files:      map[string]string{"wh.tar": whiteoutTar},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", "looks like an overlay whiteout"},
		},
		{
			name:       "archive with a dangling hard link",
			dockerfile: "FROM scratch\nADD l.tar /\n",
			files:      map[string]string{"l.tar": linkTar},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2:", `hard link to "missing"`},
		},
		{
			name:       "copy below a file",
			dockerfile: "FROM scratch\nCOPY a /f\nCOPY a /f/x\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:3: COPY: cannot create directory /f: not a directory"},
		},
		{
			name:       "workdir below a file",
			dockerfile: "FROM scratch\nCOPY a /f\nWORKDIR /f/x\n",
			files:      map[string]string{"a": "a"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:3: WORKDIR /f/x: cannot create it"},
		},
		{
			name:       "onbuild trigger with RUN",
			dockerfile: "# base runs a trigger\nFROM onbuild-run\n",
			cat:        errdefs.ErrInvalid,
			want:       []string{"Dockerfile:2: ONBUILD RUN make (from the base image): RUN needs a container runtime"},
		},
		{
			name:       "bad SOURCE_DATE_EPOCH",
			dockerfile: "FROM scratch\n",
			opts:       Options{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}},
			cat:        errdefs.ErrInvalid,
			want:       []string{`SOURCE_DATE_EPOCH "yesterday" is not a number`},
		},
		{
			name:       "missing Dockerfile",
			dockerfile: "",
			cat:        errdefs.ErrNotFound,
			want:       []string{"no Dockerfile \"Dockerfile\" in the build context", "name it with -f"},
		},
		{
			name:       "missing context directory",
			dockerfile: "FROM scratch\n",
			opts:       Options{ContextDir: "/nonexistent/skiff-build-context"},
			cat:        errdefs.ErrNotFound,
			want:       []string{`build context directory "/nonexistent/skiff-build-context" does not exist`},
		},
		{
			name:       "Dockerfile outside the context",
			dockerfile: "FROM scratch\n",
			opts:       Options{Dockerfile: "../Dockerfile"},
			cat:        errdefs.ErrInvalid,
			want:       []string{"is outside the build context"},
		},
	}
	images := testImages(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, tc.dockerfile, tc.files)
			if tc.name == "symlink escaping the context resolves inside it" {
				if err := os.Symlink("../../../../../../etc/passwd", filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
			}
			opts := tc.opts
			if opts.ContextDir == "" {
				opts.ContextDir = dir
			}
			img, err := Build(context.Background(), opts, images)
			if err == nil {
				t.Fatalf("Build succeeded (%v), want an error", img)
			}
			if !errors.Is(err, tc.cat) {
				t.Errorf("error %q is %v, want %v", err, errdefs.Category(err), tc.cat)
			}
			if n := strings.Count(err.Error(), "Dockerfile:"); n > 1 {
				t.Errorf("error %q names the line %d times", err, n)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestBuildErrorStoreFailure checks a failing store is reported as such,
// not as a missing image.
func TestBuildErrorStoreFailure(t *testing.T) {
	dir := writeContext(t, "FROM base\n", nil)
	_, err := Build(context.Background(), Options{ContextDir: dir}, failingImages{})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "Dockerfile:1: FROM base: loading image \"base\": disk on fire") {
		t.Errorf("error %q (%v), want ErrUnavailable naming the line and the cause", err, errdefs.Category(err))
	}
}

type failingImages struct{}

func (failingImages) Image(context.Context, string) (v1.Image, error) {
	return nil, errors.New("disk on fire")
}
