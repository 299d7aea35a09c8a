package compose

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestCreateRequestRunOpts checks that logging (json-file with max-size
// and max-file), devices (short and long forms) and security_opt reach
// the container's config without being reported unsupported, that an
// unknown log driver or option is reported (and left out), and that bad
// values are refused naming the line.
func TestCreateRequestRunOpts(t *testing.T) {
	opts := loadInline(t, `name: ro
services:
  app:
    image: busybox
    logging:
      driver: json-file
      options: {max-size: 1m, max-file: "3"}
    devices:
      - /dev/fuse
      - /dev/null:/dev/nothing:rw
    security_opt: ["no-new-privileges:true", "label=disable"]
`)
	p, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	req, err := CreateRequest(p, p.Services["app"], 1)
	if err != nil {
		t.Fatal(err)
	}
	c := req.Config
	if c.Log != (api.LogConfig{Driver: "json-file", MaxSize: 1 << 20, MaxFiles: 3}) {
		t.Errorf("log %+v", c.Log)
	}
	want := []api.DeviceMapping{{PathOnHost: "/dev/fuse", CgroupPermissions: "rwm"}, {PathOnHost: "/dev/null", PathInContainer: "/dev/nothing", CgroupPermissions: "rw"}}
	if !reflect.DeepEqual(c.Devices, want) {
		t.Errorf("devices %+v, want %+v", c.Devices, want)
	}
	if c.NoNewPrivileges == nil || !*c.NoNewPrivileges || !c.LabelDisable {
		t.Errorf("security options: noNewPrivileges %v, labelDisable %v", c.NoNewPrivileges, c.LabelDisable)
	}
	opts = loadInline(t, "name: ro\nservices:\n  app:\n    image: busybox\n    logging: {driver: syslog}\n  b:\n    image: busybox\n    logging: {options: {compress: \"true\", max-file: \"2\"}}\n")
	if p, err = Load(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	issues := fmt.Sprint(Unsupported(p))
	if !strings.Contains(issues, "app: logging.driver") || !strings.Contains(issues, "b: logging.options.compress") {
		t.Errorf("unsupported = %s, want app's driver and b's compress option", issues)
	}
	if req, err = CreateRequest(p, p.Services["app"], 1); err != nil || req.Config.Log != (api.LogConfig{}) {
		t.Errorf("syslog driver: %+v, %v; want skiff's log with the daemon's defaults", req.Config.Log, err)
	}
	if req, err = CreateRequest(p, p.Services["b"], 1); err != nil || req.Config.Log != (api.LogConfig{MaxFiles: 2}) {
		t.Errorf("compress and max-file: %+v, %v; want max-file alone", req.Config.Log, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"    logging: {options: {max-size: big}}\n", `"big"`},
		{"    security_opt: [systempaths=unconfined]\n", "systempaths=unconfined"},
		{"    devices: [\"/dev/fuse:/dev/f:rwx\"]\n", "rwx"},
	} {
		opts := loadInline(t, "name: ro\nservices:\n  app:\n    image: busybox\n"+tc.yaml)
		p, err := Load(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CreateRequest(p, p.Services["app"], 1)
		if err == nil || !strings.Contains(err.Error(), "compose.yaml:5") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming line 5 and %s", strings.TrimSpace(tc.yaml), err, tc.want)
		}
	}
}
