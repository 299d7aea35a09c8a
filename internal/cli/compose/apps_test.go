package compose

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api/app"
)

// TestAppFor converts the marked service of testdata/convert, compares
// the App YAML with the golden file and checks that skiff apply would
// accept it.
func TestAppFor(t *testing.T) {
	abs, _ := filepath.Abs("testdata/convert")
	p, err := Load(context.Background(), LoadOptions{WorkDir: abs})
	if err != nil {
		t.Fatal(err)
	}
	names, err := AppServices(p, false)
	if err != nil || len(names) != 1 || names[0] != "web" {
		t.Fatalf("app services %v, %v; want [web]", names, err)
	}
	a, err := AppFor(p, p.Services["web"])
	if err != nil {
		t.Fatal(err)
	}
	got, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.WriteFile("testdata/convert.golden", got, 0o644)
	}
	want, err := os.ReadFile("testdata/convert.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("App differs from testdata/convert.golden:\n%s", got)
	}
	if _, err := app.Load(bytes.NewReader(got)); err != nil {
		t.Errorf("the App is not valid: %v", err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("x-skiff or other keys reported unsupported: %v", issues)
	}
	if issues := AppIssues(p, names); len(issues) != 0 {
		t.Errorf("keys of the App service reported not carried: %v", issues)
	}
	if all, _ := AppServices(p, true); len(all) != 2 {
		t.Errorf("--apps converts %v, want both services", all)
	}
}

// TestAppIssues: the keys of an App service that an App does not carry
// are listed, once, and those of a service run as containers are not.
func TestAppIssues(t *testing.T) {
	dir := t.TempDir()
	file := `services:
  web:
    image: web
    ports: ["127.0.0.1:8080:80"]
    user: "1000"
    cap_add: [NET_ADMIN]
    volumes: ["data:/data", "./site:/site"]
    healthcheck: {test: ["CMD", "true"]}
    x-skiff: {app: true}
  db:
    image: db
    user: "999"
volumes:
  data:
`
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), LoadOptions{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if is := Unsupported(p); len(is) != 0 {
		t.Fatalf("unsupported for containers: %v", is)
	}
	apps, _ := AppServices(p, false)
	var got []string
	for _, is := range AppIssues(p, apps) {
		got = append(got, is.String())
	}
	want := []string{
		"web: cap_add (an App does not carry it: leave x-skiff.app out to run the service as containers)",
		"web: ports[].host_ip (an App is reached through the ingress at web.PROJECT.localhost, not on a host port)",
		"web: ports[].published (an App is reached through the ingress at web.PROJECT.localhost, not on a host port)",
		"web: user (an App does not carry it: leave x-skiff.app out to run the service as containers)",
		"web: volumes (an App's replicas mount named volumes only, not the bind mount at /site)",
	}
	for i := range want {
		want[i] = strings.ReplaceAll(want[i], "PROJECT", p.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("App issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if is := AppIssues(p, nil); len(is) != 0 {
		t.Errorf("no App service, issues %v", is)
	}
}
