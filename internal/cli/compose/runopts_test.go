package compose

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestCreateRequestRunOpts checks that logging (json-file with max-size
// and max-file), devices (short and long forms) and security_opt reach
// the container's config without being reported unsupported, and that
// an unknown log driver and log option are refused naming the line.
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
	for _, tc := range []struct{ yaml, want string }{
		{"    logging: {driver: syslog}\n", `"syslog"`},
		{"    logging: {options: {compress: \"true\"}}\n", `"compress"`},
		{"    security_opt: [systempaths=unconfined]\n", "systempaths=unconfined"},
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
