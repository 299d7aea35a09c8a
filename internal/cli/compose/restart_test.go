package compose

import (
	"context"
	"testing"
)

// TestDependsOnRestart: depends_on restart: true is honoured, not
// warned about; a service is restarted when a dependency it names so was
// changed by the Up, unless it was recreated itself.
func TestDependsOnRestart(t *testing.T) {
	p, err := Load(context.Background(), loadInline(t, `name: dr
services:
  db: {image: busybox}
  cache: {image: busybox}
  web:
    image: busybox
    depends_on:
      db: {condition: service_started, restart: true}
      cache: {condition: service_started}
`))
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	web := p.Services["web"]
	for _, tc := range []struct {
		name    string
		changed []string
		want    string
	}{
		{"nothing changed", nil, ""},
		{"a dependency without restart", []string{"cache"}, ""},
		{"a dependency with restart", []string{"cache", "db"}, "db"},
		{"recreated itself", []string{"db", "web"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{changed: map[string]bool{}}
			for _, s := range tc.changed {
				e.noteChanged(s)
			}
			if got := e.restartCause(web); got != tc.want {
				t.Fatalf("restartCause = %q, want %q", got, tc.want)
			}
		})
	}
}
