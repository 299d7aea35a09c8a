package api

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mount
	}{
		{"type=bind,source=/srv,target=/data,readonly", Mount{Type: MountBind, Source: "/srv", Target: "/data", ReadOnly: true}},
		{"type=bind,src=rel,dst=/d,bind-propagation=rslave,ro=false", Mount{Type: MountBind, Source: "rel", Target: "/d", BindPropagation: "rslave"}},
		{"source=data,target=/var/lib/db,volume-nocopy", Mount{Type: MountVolume, Source: "data", Target: "/var/lib/db", VolumeNoCopy: true}},
		{"type=volume,destination=/anon", Mount{Type: MountVolume, Target: "/anon"}},
		{"type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=0700", Mount{Type: MountTmpfs, Target: "/t", TmpfsSize: 64 << 20, TmpfsMode: 0o700}},
		{`type=bind,"source=/a,b",target=/x`, Mount{Type: MountBind, Source: "/a,b", Target: "/x"}},
	} {
		got, err := ParseMount(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, names string }{
		{"type=bind,source=/a,target=/b,color=red", `key "color"`},
		{"type=npipe,target=/b", `type "npipe"`},
		{"type=bind,source=/a", `target ""`},
		{"type=bind,source=/a,target=rel", `target "rel"`},
		{"type=bind,target=/b", "source=/host/path"},
		{"type=volume,source=v,target=/b,bind-propagation=rshared", "bind-propagation is only for type=bind"},
		{"type=bind,source=/a,target=/b,bind-propagation=sideways", `bind-propagation "sideways"`},
		{"type=tmpfs,target=/b,volume-nocopy", "volume-nocopy is only for type=volume"},
		{"type=bind,source=/a,target=/b,tmpfs-size=1m", "only for type=tmpfs"},
		{"type=tmpfs,target=/b,tmpfs-size=lots", `tmpfs-size "lots"`},
		{"type=tmpfs,target=/b,tmpfs-mode=9", `tmpfs-mode "9"`},
		{"type=tmpfs,source=x,target=/b", "no source"},
		{"type=bind,source=/a,target=/b,readonly=maybe", `readonly="maybe"`},
		{`type=bind,"source=/a`, "invalid --mount"},
	} {
		_, err := ParseMount(tc.in)
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("ParseMount(%q) = %v, want ErrInvalid naming %s", tc.in, err, tc.names)
		}
	}
}

// FuzzParseMount checks that ParseMount never panics, refuses with
// ErrInvalid only, and accepts only mounts that are whole: a known type,
// an absolute target, and only the keys of that type.
func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"type=bind,source=/a,target=/b,readonly", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700",
		"source=v,target=/v,volume-nocopy", `"type=bind",src=/x,dst=/y,bind-propagation=rshared`, "", ",,,", "type=bind,,target=/x,source="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ParseMount(%q) = %v, not ErrInvalid", s, err)
			}
			return
		}
		switch {
		case m.Type != MountBind && m.Type != MountVolume && m.Type != MountTmpfs:
			t.Fatalf("ParseMount(%q) accepted type %q", s, m.Type)
		case !strings.HasPrefix(m.Target, "/"):
			t.Fatalf("ParseMount(%q) accepted target %q", s, m.Target)
		case m.BindPropagation != "" && m.Type != MountBind, m.VolumeNoCopy && m.Type != MountVolume,
			(m.TmpfsSize != 0 || m.TmpfsMode != 0) && m.Type != MountTmpfs, m.Type == MountTmpfs && m.Source != "",
			m.Type == MountBind && m.Source == "", m.TmpfsSize < 0, m.TmpfsMode&^0o7777 != 0:
			t.Fatalf("ParseMount(%q) accepted %+v", s, m)
		}
	})
}

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DeviceMapping
	}{
		{"/dev/fuse", DeviceMapping{PathOnHost: "/dev/fuse"}},
		{"/dev/fuse:r", DeviceMapping{PathOnHost: "/dev/fuse", CgroupPermissions: "r"}},
		{"/dev/loop0:/dev/disk", DeviceMapping{PathOnHost: "/dev/loop0", PathInContainer: "/dev/disk"}},
		{"/dev/loop0:/dev/disk:rw", DeviceMapping{PathOnHost: "/dev/loop0", PathInContainer: "/dev/disk", CgroupPermissions: "rw"}},
	} {
		got, err := ParseDevice(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, s := range []string{"", "dev/fuse", "/dev/fuse:rel", "/dev/a:/dev/b:rwx", "/dev/a:/dev/b:rr", "/a:/b:r:w", "/dev/../etc/x"} {
		if _, err := ParseDevice(s); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "--device") {
			t.Errorf("ParseDevice(%q) = %v, want ErrInvalid naming --device", s, err)
		}
	}
}

// FuzzParseDevice checks that ParseDevice never panics and accepts only
// absolute clean paths and valid permissions.
func FuzzParseDevice(f *testing.F) {
	for _, s := range []string{"/dev/fuse", "/dev/a:/dev/b:rwm", "/dev/a:m", "::", "/dev/a::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDevice(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ParseDevice(%q) = %v, not ErrInvalid", s, err)
			}
			return
		}
		if !strings.HasPrefix(d.PathOnHost, "/") || (d.PathInContainer != "" && !strings.HasPrefix(d.PathInContainer, "/")) ||
			(d.CgroupPermissions != "" && !ValidDevicePermissions(d.CgroupPermissions)) || strings.Contains(d.PathOnHost+d.PathInContainer, "..") && d.Check() != nil {
			t.Fatalf("ParseDevice(%q) accepted %+v", s, d)
		}
	})
}

func TestParseSecurityOpt(t *testing.T) {
	var c ContainerConfig
	for _, o := range []string{"no-new-privileges", "seccomp=unconfined", "apparmor=unconfined", "label=disable"} {
		if err := ParseSecurityOpt(&c, o); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
	}
	if c.NoNewPrivileges == nil || !*c.NoNewPrivileges || c.Seccomp != SeccompUnconfined || c.AppArmor != "unconfined" || !c.LabelDisable {
		t.Errorf("config = %+v", c)
	}
	if err := ParseSecurityOpt(&c, "no-new-privileges:false"); err != nil || *c.NoNewPrivileges {
		t.Errorf("no-new-privileges:false: %v, %v", err, *c.NoNewPrivileges)
	}
	if err := ParseSecurityOpt(&c, `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`); err != nil || !strings.HasPrefix(c.Seccomp, "{") {
		t.Errorf("seccomp profile: %v, %q", err, c.Seccomp)
	}
	if got := SecurityOpts(c); len(got) != 4 || got[0] != "no-new-privileges=false" {
		t.Errorf("SecurityOpts = %q", got)
	}
	for _, o := range []string{"systempaths=unconfined", "no-new-privileges=sure", "seccomp=/x.json", "apparmor=docker-default", "label=type:spc_t"} {
		if err := ParseSecurityOpt(&c, o); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), strings.SplitN(strings.SplitN(o, "=", 2)[0], ":", 2)[0]) {
			t.Errorf("ParseSecurityOpt(%q) = %v, want ErrInvalid naming it", o, err)
		}
	}
}

func TestParseLogOpt(t *testing.T) {
	var c LogConfig
	for _, o := range []string{"max-size=10m", "max-file=3"} {
		if err := ParseLogOpt(&c, o); err != nil {
			t.Fatal(err)
		}
	}
	if c != (LogConfig{MaxSize: 10 << 20, MaxFiles: 3}) {
		t.Errorf("log config = %+v", c)
	}
	for _, o := range []string{"compress=true", "max-size=big", "max-file=0", "max-file=1000", "max-size=-1"} {
		if err := ParseLogOpt(&c, o); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), strings.SplitN(o, "=", 2)[0]) {
			t.Errorf("ParseLogOpt(%q) = %v, want ErrInvalid naming it", o, err)
		}
	}
	for _, d := range []string{"", "json-file", "local", "none"} {
		if err := CheckLogDriver(d); err != nil {
			t.Errorf("driver %q: %v", d, err)
		}
	}
	if err := CheckLogDriver("syslog"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "syslog") {
		t.Errorf("syslog: %v", err)
	}
}
