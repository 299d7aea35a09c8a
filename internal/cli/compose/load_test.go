package compose

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestConfigGolden loads each project of testdata/config (compose.yaml,
// its override, .env) and compares what `compose config` prints, and the
// unsupported keys, with the golden file beside it.
func TestConfigGolden(t *testing.T) {
	t.Setenv("LOG_LEVEL", "debug")
	dirs, err := filepath.Glob("testdata/config/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, _ := filepath.Abs(dir)
			p, err := Load(context.Background(), LoadOptions{WorkDir: abs})
			if err != nil {
				t.Fatal(err)
			}
			b, err := Config(p)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(string(b), abs, "$DIR")
			got += "# unsupported:\n"
			for _, i := range Unsupported(p) {
				got += "#   " + i.String() + "\n"
			}
			golden := dir + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("config of %s differs from %s:\n%s", dir, golden, got)
			}
		})
	}
}

// TestProfiles checks that a profile enables its services.
func TestProfiles(t *testing.T) {
	abs, _ := filepath.Abs("testdata/config/profiles")
	p, err := Load(context.Background(), LoadOptions{WorkDir: abs})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Services["adminer"]; ok {
		t.Errorf("adminer is enabled without its profile")
	}
	p, err = Load(context.Background(), LoadOptions{WorkDir: abs, Profiles: []string{"debug"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Services["adminer"]; !ok {
		t.Errorf("adminer is not enabled with --profile debug: %v", p.ServiceNames())
	}
}

// TestLoadErrors checks that malformed projects are refused with an
// Invalid error naming the file and line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad yaml", "services:\n  a:\n    image: x\n   b: 1\n", []string{"compose.yaml", "line 3"}},
		{"unknown dependency", "services:\n  a:\n    image: x\n    depends_on: [c]\n", []string{"compose.yaml:4", `undefined service "c"`}},
		{"cycle", "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", []string{"compose.yaml:", "cycle"}},
		{"port clash", "services:\n  a:\n    image: x\n    ports: [\"8080:80\"]\n  b:\n    image: x\n    ports: [\"8080:81\"]\n", []string{"compose.yaml:7", "8080/tcp is published twice", "service a and service b"}},
		{"replicas on a host port", "services:\n  a:\n    image: x\n    ports: [\"8080:80\"]\n    deploy: {replicas: 2}\n", []string{"compose.yaml:4", "2 replicas"}},
		{"missing variable", "services:\n  a:\n    image: ${IMG:?set IMG}\n", []string{"compose.yaml:3", "required variable IMG is missing"}},
		{"bad restart", "services:\n  a:\n    image: x\n    restart: sometimes\n", []string{"restart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Load(context.Background(), LoadOptions{WorkDir: dir})
			if err == nil {
				for _, name := range sortedServices(p) {
					if _, err = CreateRequest(p, p.Services[name], 1); err != nil {
						break
					}
				}
			}
			if err == nil {
				t.Fatal("loaded")
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not Invalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
