package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

// FuzzBuildDockerfile feeds arbitrary Dockerfiles, with a tiny context and
// a fake store, to Build: it must never panic, and every error must say
// the input is wrong (ErrInvalid) or names something missing (ErrNotFound).
func FuzzBuildDockerfile(f *testing.F) {
	for _, tc := range goldenCases {
		if df, err := os.ReadFile(filepath.Join("testdata", tc.name, "Dockerfile")); err == nil {
			f.Add(string(df))
		}
	}
	for _, df := range []string{
		"FROM scratch\nRUN make\n",
		"FROM scratch\nCOPY ../x /x\n",
		"FROM scratch\nCOPY --from=nosuch /a /a\n",
		"FROM nosuch\n",
		"FROM scratch AS a\nFROM a AS b\nCOPY --from=a / /\nCOPY --from=0 /x* /y/\n",
		"ARG X=base\nFROM ${X}\nCOPY --chown=app:staff a /a\nWORKDIR /lib/x\nADD app.tar /\n",
		"FROM base\nCOPY --from=base /srv /srv2\nCOPY dir /lib/\nUSER app\nWORKDIR rel\n",
		"# escape=`\nFROM scratch\nENV A=1 `\n  B=2\nCOPY <<EOF /x\n$A\nEOF\n",
		"FROM onbuild\nFROM onbuild-run\n",
		"FROM scratch\nEXPOSE 1-3/udp\nSTOPSIGNAL RTMIN+3\nHEALTHCHECK NONE\n",
		"FROM\n",
		"",
		// RUN with BuildKit's mounts and networks.
		"FROM scratch\nRUN --mount=type=cache,target=/c,id=x,sharing=locked,mode=0700,uid=1,gid=2 make\n",
		"FROM scratch AS a\nFROM scratch\nRUN --mount=type=bind,from=a,source=/x,target=/y,rw --mount=type=tmpfs,target=/t,size=1m make\n",
		"FROM scratch\nRUN --mount=type=secret,id=tok,required,env=TOK --mount=type=secret,target=/run/x,mode=0440 make\n",
		"FROM scratch\nARG T=/cache\nRUN --mount=type=cache,target=$T,sharing=private --network=none make\n",
		"FROM scratch\nRUN --network=host make\nRUN --network=default make\n",
		"FROM scratch\nRUN --mount=type=ssh make\nRUN --security=insecure make\n",
		"FROM scratch\nRUN --mount=type=bind,from=$X,target=/x make\n",
		"FROM scratch\nRUN --mount=type=bind,from=9,target=/x make\nRUN --mount=target=relative,source=../.. make\n",
		"FROM scratch\nONBUILD RUN --mount=type=cache,target=/c make\n",
		"FROM scratch\nRUN --mount=type=cache,target=/c,id=x --mount=type=tmpfs,target=/c/ make\n",
		"FROM scratch\nWORKDIR /w\nRUN --mount=type=secret,id=a,target=s,uid=5 <<EOF\ncat s\nEOF\n",
		"FROM scratch\nRUN --mount=type=tmpfs,target=/,ro make\n",
	} {
		f.Add(df)
	}
	images := testImages(f)
	dir := f.TempDir()
	for name, body := range map[string]string{
		"a":             "a\n",
		"dir/b":         "b\n",
		"dir/sub/c":     "c\n",
		"app.tar":       string(appTar(f)),
		"hello.txt":     "hello\n",
		".dockerignore": "*.secret\n",
		"x.secret":      "s\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		writeFile(f, p, []byte(body))
	}
	if err := os.Symlink("dir", filepath.Join(dir, "link")); err != nil {
		f.Fatal(err)
	}
	cacheDir := f.TempDir()
	f.Fuzz(func(t *testing.T, dockerfile string) {
		writeFile(t, filepath.Join(dir, "Dockerfile"), []byte(dockerfile))
		_, err := Build(context.Background(), Options{
			ContextDir: dir,
			BuildArgs:  map[string]string{"A": "1", "X": "base"},
			CacheDir:   cacheDir,
			Secrets:    map[string][]byte{"tok": []byte("v")},
		}, images)
		if err == nil {
			return
		}
		if cat := errdefs.Category(err); cat != errdefs.ErrInvalid && cat != errdefs.ErrNotFound {
			t.Fatalf("error %q has category %v, want invalid or not found", err, cat)
		}
	})
}
