package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestRunFlagsMore checks that --mount, --security-opt (with a seccomp
// profile file read here), --device, --log-driver, --log-opt and -a
// reach the create request: a relative bind source made absolute, a
// volume without a source named, the profile's content sent.
func TestRunFlagsMore(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	f := runFlags{pull: "missing", userns: "host", restart: "no", stopTimeout: -1,
		mounts:       []string{"type=bind,source=rel,target=/r", "type=volume,target=/anon"},
		securityOpts: []string{"no-new-privileges=false", "seccomp=" + profile},
		devices:      []string{"/dev/fuse:rw"}, logDriver: "local", logOpts: []string{"max-size=1m", "max-file=2"},
		attach: []string{"stdout"}}
	req, err := f.request([]string{"busybox"})
	if err != nil {
		t.Fatal(err)
	}
	c := req.Config
	wd, _ := os.Getwd()
	if len(c.Mounts) != 2 || c.Mounts[0].Source != filepath.Join(wd, "rel") || c.Mounts[1].Type != api.MountVolume || len(c.Mounts[1].Source) != 64 {
		t.Errorf("mounts = %+v", c.Mounts)
	}
	if c.NoNewPrivileges == nil || *c.NoNewPrivileges || c.Seccomp != `{"defaultAction":"SCMP_ACT_ALLOW"}` {
		t.Errorf("security: %v %q", c.NoNewPrivileges, c.Seccomp)
	}
	if len(c.Devices) != 1 || c.Devices[0].CgroupPermissions != "rw" || c.Log != (api.LogConfig{Driver: "local", MaxSize: 1 << 20, MaxFiles: 2}) {
		t.Errorf("devices %+v, log %+v", c.Devices, c.Log)
	}
	if s, err := f.attachStreams(); err != nil || s != (streams{stdout: true}) {
		t.Errorf("attach streams %+v, %v", s, err)
	}
	f.attach = []string{"stdin"}
	if err := checkAttach(&f, false); err == nil || !strings.Contains(err.Error(), "-i") {
		t.Errorf("-a stdin without -i: %v", err)
	}
}
