package build

import (
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/api/errdefs"
)

func TestApplyChanges(t *testing.T) {
	cfg, err := ApplyChanges(v1.Config{Env: []string{"PATH=/bin"}}, []string{
		`ENV GREETING=hello WHO=world`,
		`CMD echo $GREETING`,
		`ENTRYPOINT ["/bin/sh", "-c"]`,
		`EXPOSE 80 53/udp`,
		`LABEL team=web`,
		`USER 1000:1000`,
		`WORKDIR /srv`,
		`WORKDIR app`,
		`VOLUME /data`,
		`STOPSIGNAL SIGINT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Env, []string{"PATH=/bin", "GREETING=hello", "WHO=world"}) {
		t.Errorf("Env = %q", cfg.Env)
	}
	if !slices.Equal(cfg.Cmd, []string{"/bin/sh", "-c", "echo $GREETING"}) {
		t.Errorf("Cmd = %q", cfg.Cmd)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/bin/sh", "-c"}) {
		t.Errorf("Entrypoint = %q", cfg.Entrypoint)
	}
	if _, ok := cfg.ExposedPorts["53/udp"]; !ok || len(cfg.ExposedPorts) != 2 {
		t.Errorf("ExposedPorts = %v", cfg.ExposedPorts)
	}
	if cfg.Labels["team"] != "web" || cfg.User != "1000:1000" || cfg.WorkingDir != "/srv/app" || cfg.StopSignal != "SIGINT" {
		t.Errorf("config = %+v", cfg)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("Volumes = %v", cfg.Volumes)
	}

	for _, tc := range []struct{ change, want string }{
		{"RUN echo hi", "RUN cannot be applied by an import; only CMD, ENTRYPOINT"},
		{"COPY a /a", "COPY cannot be applied"},
		{"FROM scratch", "FROM cannot be applied"},
		{"CMD a\nCMD b", "one Dockerfile instruction per --change"},
		{"", "one Dockerfile instruction per --change"},
		{"BOGUS x", "BOGUS"},
		{"STOPSIGNAL NOPE", "NOPE"},
		{"EXPOSE 99999", "99999"},
	} {
		_, err := ApplyChanges(v1.Config{}, []string{tc.change})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--change") {
			t.Errorf("change %q: got %v, want an ErrInvalid error with %q", tc.change, err, tc.want)
		}
	}
}
