package dockerapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// createRequest decodes a create body as the handler does.
func createRequest(t *testing.T, body string) container.CreateRequest {
	t.Helper()
	var req container.CreateRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestCreateConfigMaps(t *testing.T) {
	req := createRequest(t, `{
		"Image": "busybox", "Cmd": ["sh"], "Entrypoint": [""], "Env": ["A=1"], "WorkingDir": "/w", "User": "1000",
		"Labels": {"k": "v"}, "Tty": true, "OpenStdin": true, "StopTimeout": 3,
		"Volumes": {"/anon": {}},
		"ExposedPorts": {"9000/tcp": {}},
		"HostConfig": {
			"Binds": ["data:/data", "/srv/x:/x:ro"],
			"Tmpfs": {"/run": "size=64m,rw,mode=0755"},
			"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 1049087}}],
			"ShmSize": 268435456, "GroupAdd": ["audio", "4242"],
			"PortBindings": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": ""}]},
			"PublishAllPorts": true,
			"RestartPolicy": {"Name": "unless-stopped"},
			"AutoRemove": true, "CapAdd": ["NET_ADMIN"], "CapDrop": ["ALL"],
			"Memory": 67108864, "CpuQuota": 50000, "CpuPeriod": 100000, "PidsLimit": 64,
			"NetworkMode": "backend", "Init": true, "ConsoleSize": [24, 80]
		},
		"NetworkingConfig": {"EndpointsConfig": {"backend": {"Aliases": ["db"]}}}
	}`)
	cfg, err := createConfig(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mounts) != 5 || cfg.Mounts[0].Type != api.MountVolume || len(cfg.Mounts[0].Source) != 64 || cfg.Mounts[0].Target != "/anon" {
		t.Errorf("anonymous volume: %+v", cfg.Mounts)
	}
	want := []api.Mount{
		{Type: api.MountVolume, Source: "data", Target: "/data"},
		{Type: api.MountBind, Source: "/srv/x", Target: "/x", ReadOnly: true},
		{Type: api.MountTmpfs, Target: "/t", TmpfsSize: 1024, TmpfsMode: 0o1777},
		{Type: api.MountTmpfs, Target: "/run", TmpfsSize: 64 << 20, TmpfsMode: 0o755},
	}
	if !reflect.DeepEqual(cfg.Mounts[1:], want) {
		t.Errorf("mounts = %+v, want %+v", cfg.Mounts[1:], want)
	}
	if cfg.ShmSize != 256<<20 || !reflect.DeepEqual(cfg.GroupAdd, []string{"audio", "4242"}) {
		t.Errorf("ShmSize, GroupAdd = %d, %v", cfg.ShmSize, cfg.GroupAdd)
	}
	if cfg.Entrypoint == nil || len(cfg.Entrypoint) != 0 {
		t.Errorf(`Entrypoint [""] = %#v, want empty (no entrypoint)`, cfg.Entrypoint)
	}
	if cfg.RestartPolicy.Name != api.RestartAlways || !cfg.AutoRemove || cfg.Resources.NanoCPUs != 5e8 || cfg.Resources.MemoryBytes != 64<<20 || cfg.Resources.PidsLimit != 64 {
		t.Errorf("restart, resources: %+v %+v", cfg.RestartPolicy, cfg.Resources)
	}
	if cfg.Network != "backend" || !reflect.DeepEqual(cfg.NetworkAliases, []string{"db"}) || !cfg.Init || cfg.ConsoleSize == nil || cfg.ConsoleSize.Width != 80 {
		t.Errorf("network, init, console: %q %v %v %+v", cfg.Network, cfg.NetworkAliases, cfg.Init, cfg.ConsoleSize)
	}
	ports := map[string]api.PortMapping{}
	for _, p := range cfg.Ports {
		ports[p.Protocol+"/"+itoa(p.ContainerPort)] = p
	}
	if p := ports["tcp/80"]; p.HostIP != "0.0.0.0" || p.HostPort != 8080 {
		t.Errorf("80/tcp = %+v", p)
	}
	if p := ports["udp/53"]; p.HostIP != "" || p.HostPort != 0 {
		t.Errorf("53/udp = %+v (no host address: skiff's default)", p)
	}
	if p, ok := ports["tcp/9000"]; !ok || p.HostPort != 0 {
		t.Errorf("PublishAllPorts did not publish 9000/tcp: %+v", cfg.Ports)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestCreateConfigNetworks: the endpoint of NetworkMode is the first
// network, the others further ones, each with its aliases and address.
func TestCreateConfigNetworks(t *testing.T) {
	cfg, err := createConfig(createRequest(t, `{"Image":"x","HostConfig":{"NetworkMode":"front"},"NetworkingConfig":{"EndpointsConfig":{
		"front":{"Aliases":["web"],"IPAMConfig":{"IPv4Address":"10.90.0.9"}},
		"back":{"Aliases":["api"],"IPAMConfig":{"IPv4Address":"10.91.0.9"}},
		"bridge":{}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []api.NetworkAttachment{{Network: "back", Aliases: []string{"api"}, IP: "10.91.0.9"}, {Network: api.DefaultNetwork}}
	if cfg.Network != "front" || cfg.IP != "10.90.0.9" || !slices.Equal(cfg.NetworkAliases, []string{"web"}) || !reflect.DeepEqual(cfg.ExtraNetworks, want) {
		t.Fatalf("network %q ip %q aliases %v extra %+v", cfg.Network, cfg.IP, cfg.NetworkAliases, cfg.ExtraNetworks)
	}
	cfg, err = createConfig(createRequest(t, `{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"back":{"IPAMConfig":{"IPv4Address":"10.91.0.9"}}}}}`))
	if err != nil || cfg.Network != "back" || cfg.IP != "10.91.0.9" || len(cfg.ExtraNetworks) != 0 {
		t.Fatalf("one endpoint: %v %q %q %+v", err, cfg.Network, cfg.IP, cfg.ExtraNetworks)
	}
}

func TestCreateConfigRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, field string }{
		{"no image", `{"Cmd":["x"]}`, "Config.Image"},
		{"healthcheck", `{"Image":"x","Healthcheck":{"Test":["true"]}}`, "Config.Healthcheck"},
		{"device relative", `{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"dev/fuse"}]}}`, "HostConfig.Devices"},
		{"device permissions", `{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"/dev/fuse","CgroupPermissions":"rwx"}]}}`, "HostConfig.Devices"},
		{"gpus", `{"Image":"x","HostConfig":{"DeviceRequests":[{"Count":1}]}}`, "HostConfig.DeviceRequests"},
		{"log opt", `{"Image":"x","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"compress":"true"}}}}`, "HostConfig.LogConfig.Config"},
		{"mount subpath", `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/p","VolumeOptions":{"Subpath":"a"}}]}}`, "HostConfig.Mounts"},
		{"mount driver", `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/p","VolumeOptions":{"DriverConfig":{"Name":"nfs"}}}]}}`, "HostConfig.Mounts"},
		{"links", `{"Image":"x","HostConfig":{"Links":["a:b"]}}`, "HostConfig.Links"},
		{"pid host", `{"Image":"x","HostConfig":{"PidMode":"host"}}`, "HostConfig.PidMode"},
		{"security opt", `{"Image":"x","HostConfig":{"SecurityOpt":["systempaths=unconfined"]}}`, "HostConfig.SecurityOpt"},
		{"seccomp path", `{"Image":"x","HostConfig":{"SecurityOpt":["seccomp=/etc/p.json"]}}`, "HostConfig.SecurityOpt"},
		{"log driver", `{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog"}}}`, "HostConfig.LogConfig.Type"},
		{"restart", `{"Image":"x","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, "HostConfig.RestartPolicy.Name"},
		{"bind option", `{"Image":"x","HostConfig":{"Binds":["/a:/b:bogus"]}}`, "HostConfig.Binds"},
		{"bind relative target", `{"Image":"x","HostConfig":{"Binds":["/a:b"]}}`, "HostConfig.Binds"},
		{"tmpfs option", `{"Image":"x","HostConfig":{"Tmpfs":{"/t":"exec"}}}`, "HostConfig.Tmpfs"},
		{"tmpfs mode", `{"Image":"x","HostConfig":{"Tmpfs":{"/t":"mode=999"}}}`, "HostConfig.Tmpfs"},
		{"port range", `{"Image":"x","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8000-8010"}]}}}`, "HostConfig.PortBindings"},
		{"sctp", `{"Image":"x","HostConfig":{"PortBindings":{"80/sctp":[{"HostPort":"80"}]}}}`, "HostConfig.PortBindings"},
		{"container network", `{"Image":"x","HostConfig":{"NetworkMode":"container:db"}}`, "HostConfig.NetworkMode"},
		{"fixed IPv6", `{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"a":{"IPAMConfig":{"IPv6Address":"fd00::9"}}}}}`, "EndpointsConfig[a].IPAMConfig.IPv6Address"},
		{"mount type", `{"Image":"x","HostConfig":{"Mounts":[{"Type":"npipe","Target":"/p"}]}}`, "HostConfig.Mounts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := createConfig(createRequest(t, tc.body))
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("createConfig = %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
}

func TestCreateConfigHostOptions(t *testing.T) {
	body := `{"Image":"x","HostConfig":{
		"SecurityOpt":["no-new-privileges:false","seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"],
		"Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/f","CgroupPermissions":"rw"}],
		"LogConfig":{"Type":"local","Config":{"max-size":"1k","max-file":"3"}},
		"Binds":["/srv:/b:rslave"],
		"Mounts":[{"Type":"bind","Source":"/a","Target":"/a","BindOptions":{"Propagation":"rshared"}},
			{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"NoCopy":true}}]}}`
	cfg, err := createConfig(createRequest(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NoNewPrivileges == nil || *cfg.NoNewPrivileges || cfg.Seccomp != `{"defaultAction":"SCMP_ACT_ALLOW"}` {
		t.Errorf("security options: noNewPrivileges %v, seccomp %q", cfg.NoNewPrivileges, cfg.Seccomp)
	}
	if len(cfg.Devices) != 1 || cfg.Devices[0] != (api.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/f", CgroupPermissions: "rw"}) {
		t.Errorf("devices = %+v", cfg.Devices)
	}
	if cfg.Log != (api.LogConfig{Driver: "local", MaxSize: 1024, MaxFiles: 3}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	want := []api.Mount{
		{Type: api.MountBind, Source: "/srv", Target: "/b", BindPropagation: "rslave"},
		{Type: api.MountBind, Source: "/a", Target: "/a", BindPropagation: "rshared"},
		{Type: api.MountVolume, Source: "v", Target: "/v", VolumeNoCopy: true},
	}
	if !reflect.DeepEqual(cfg.Mounts, want) {
		t.Errorf("mounts = %+v, want %+v", cfg.Mounts, want)
	}
	hc := hostConfigOf(api.Container{Config: cfg})
	if hc.LogConfig.Type != "local" || hc.LogConfig.Config["max-file"] != "3" || len(hc.SecurityOpt) != 2 || len(hc.Devices) != 1 {
		t.Errorf("inspect HostConfig: log %+v, security %v, devices %+v", hc.LogConfig, hc.SecurityOpt, hc.Devices)
	}
}

func TestInspectRoundTrip(t *testing.T) {
	cfg, err := createConfig(createRequest(t, `{"Image":"busybox","HostConfig":{"Binds":["/srv:/srv:ro"],"PortBindings":{"80/tcp":[{"HostPort":"8080"}]},"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := api.Container{ID: strings.Repeat("ab", 32), Name: "web", Config: cfg, State: api.ContainerState{Status: api.StatusRunning, Pid: 42},
		NetworkSettings: &api.NetworkSettings{Network: "skiff", IP: "10.88.0.2", Ports: []api.PortMapping{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}}}
	in := inspectResponse(c)
	if in.Name != "/web" || !in.State.Running || in.State.Pid != 42 || in.HostConfig.Binds[0] != "/srv:/srv:ro" ||
		in.HostConfig.RestartPolicy.Name != "on-failure" || in.HostConfig.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("inspect = %+v %+v", in.State, in.HostConfig)
	}
	b, _ := json.Marshal(in.NetworkSettings)
	if !strings.Contains(string(b), `"Ports":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}`) || !strings.Contains(string(b), `"IPAddress":"10.88.0.2"`) {
		t.Errorf("network settings = %s", b)
	}
	s := summary(c, c.State.StartedAt)
	if s.Names[0] != "/web" || s.State != container.StateRunning || len(s.Ports) != 1 || s.Ports[0].PublicPort != 8080 {
		t.Errorf("summary = %+v", s)
	}
}

func TestFrameWriter(t *testing.T) {
	var buf bytes.Buffer
	out, errw := outputWriters(&buf, false)
	out.Write([]byte("to stdout\n"))
	errw.Write([]byte("to stderr\n"))
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, &buf); err != nil {
		t.Fatal(err)
	}
	if o.String() != "to stdout\n" || e.String() != "to stderr\n" {
		t.Fatalf("demultiplexed %q %q", o.String(), e.String())
	}
}

func TestEventHubTransitions(t *testing.T) {
	h := NewEventHub()
	_, ch, cancel := h.subscribe(time.Time{})
	defer cancel()
	c := api.Container{ID: "c1", Name: "web", Config: api.ContainerConfig{Image: "busybox", Labels: map[string]string{"tier": "front"}}}
	for _, st := range []string{api.StatusCreated, api.StatusRunning, api.StatusStopping, api.StatusExited, api.StatusRunning} {
		c.State.Status = st
		if st == api.StatusExited {
			c.State.ExitCode = 3
		}
		h.ContainerChanged(c, false)
	}
	h.ContainerChanged(c, true)
	var got []string
	for len(ch) > 0 {
		m := <-ch
		s := string(m.Action)
		if code := m.Actor.Attributes["exitCode"]; code != "" {
			s += " " + code
		}
		if m.Actor.Attributes["tier"] != "front" || m.Actor.Attributes["name"] != "web" || m.Type != events.ContainerEventType {
			t.Errorf("event attributes: %+v", m)
		}
		got = append(got, s)
	}
	want := []string{"create", "start", "die 3", "start", "die 3", "destroy"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	var nilHub *EventHub
	nilHub.ContainerChanged(c, true) // a nil hub ignores changes
}

func TestFilterPS(t *testing.T) {
	out := "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sleep 100\nroot 11 10 0 10:00 ? 00:00:00 other thing\n"
	res, err := filterPS(out, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Processes) != 1 || res.Processes[0][7] != "sleep 100" || len(res.Titles) != 8 {
		t.Fatalf("top = %+v", res)
	}
	if _, err := filterPS("USER CMD\nroot x\n", []int{1}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("ps output without PID: %v", err)
	}
}
