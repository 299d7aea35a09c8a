package compose

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"skiff.dev/skiff/api"
)

// TestCreateRequest checks the mapping of a service to a container: docker
// compose's names and labels, limits, restart, user, mounts, secrets.
func TestCreateRequest(t *testing.T) {
	abs, _ := filepath.Abs("testdata/config/worker")
	p, err := Load(context.Background(), LoadOptions{WorkDir: abs})
	if err != nil {
		t.Fatal(err)
	}
	req, err := CreateRequest(p, p.Services["worker"], 2)
	if err != nil {
		t.Fatal(err)
	}
	c := req.Config
	if req.Name != "jobs-worker-2" {
		t.Errorf("name %q, want jobs-worker-2", req.Name)
	}
	for k, want := range map[string]string{LabelProject: "jobs", LabelService: "worker", LabelNumber: "2", LabelOneoff: "False", "team": "backend"} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if c.Labels[LabelConfigHash] != ConfigHash(p.Services["worker"]) || len(c.Labels[LabelConfigHash]) != 64 {
		t.Errorf("config hash label %q", c.Labels[LabelConfigHash])
	}
	if want := (api.Resources{MemoryBytes: 128 << 20, MemoryReservationBytes: 32 << 20, NanoCPUs: 5e8, PidsLimit: 100}); c.Resources != want {
		t.Errorf("resources %+v, want %+v", c.Resources, want)
	}
	if c.RestartPolicy != (api.RestartPolicy{Name: api.RestartOnFailure, MaxRetries: 5}) {
		t.Errorf("restart %+v", c.RestartPolicy)
	}
	if c.Network != "jobs_default" || !reflect.DeepEqual(c.NetworkAliases, []string{"worker"}) {
		t.Errorf("network %q aliases %v", c.Network, c.NetworkAliases)
	}
	if c.User != "1000:1000" || c.WorkingDir != "/srv" || !c.ReadonlyRootfs || c.StopSignal != "SIGINT" {
		t.Errorf("user %q workdir %q readonly %v stop signal %q", c.User, c.WorkingDir, c.ReadonlyRootfs, c.StopSignal)
	}
	if !reflect.DeepEqual(c.Cmd, []string{"worker", "--queue", "redis://queue:6379"}) {
		t.Errorf("cmd %q", c.Cmd)
	}
	if !reflect.DeepEqual(c.Env, []string{"CONCURRENCY=4"}) {
		t.Errorf("env %q (LOG_LEVEL is unset, so left out)", c.Env)
	}
	want := []api.Mount{{Type: api.MountBind, Source: filepath.Join(abs, "queue_password.txt"), Target: "/run/secrets/queue_password", ReadOnly: true}}
	if !reflect.DeepEqual(c.Mounts, want) {
		t.Errorf("mounts %+v, want %+v", c.Mounts, want)
	}

	// A change of replicas keeps the hash; a change of command does not.
	s := p.Services["worker"]
	n := 5
	s.Deploy.Replicas = &n
	if ConfigHash(s) != ConfigHash(p.Services["worker"]) {
		t.Errorf("the replica count changed the config hash")
	}
	s.Command = []string{"other"}
	if ConfigHash(s) == ConfigHash(p.Services["worker"]) {
		t.Errorf("a new command kept the config hash")
	}
}

func TestRestartPolicy(t *testing.T) {
	for in, want := range map[string]api.RestartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"}, "unless-stopped": {Name: "always"},
		"on-failure": {Name: "on-failure"}, "on-failure:3": {Name: "on-failure", MaxRetries: 3},
	} {
		got, err := restartPolicy(in)
		if err != nil || got != want {
			t.Errorf("restartPolicy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := restartPolicy("on-failure:x"); err == nil {
		t.Errorf("on-failure:x accepted")
	}
}
