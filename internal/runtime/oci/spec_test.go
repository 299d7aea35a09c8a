package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func testRootfs(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("testdata/rootfs")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func busyboxImage() v1.Config {
	return v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}
}

func TestSpecGolden(t *testing.T) {
	rootfs := testRootfs(t)
	memory := int64(64 << 20)
	tests := []struct {
		name string
		in   Input
	}{
		{name: "default", in: Input{ID: "0123456789abcdef", Image: busyboxImage()}},
		{name: "entrypoint-override", in: Input{ID: "c2", Image: v1.Config{
			Entrypoint: []string{"/bin/server"}, Cmd: []string{"--port", "80"}, WorkingDir: "/srv", User: "app",
			Env: []string{"MODE=dev", "LANG=C"},
		}, Config: api.ContainerConfig{
			Entrypoint: []string{"/bin/echo"}, Env: []string{"MODE=prod", "EXTRA=1"}, WorkingDir: "/tmp/../data",
		}}},
		{name: "user-group-resources", in: Input{ID: "c3", Hostname: "web-1", Image: busyboxImage(), Config: api.ContainerConfig{
			User: "app:staff", ReadonlyRootfs: true,
			Resources: api.Resources{MemoryBytes: memory, NanoCPUs: 5e8, PidsLimit: 64},
		}, CgroupParent: "/tenants/a"}},
		{name: "caps-and-netns", in: Input{ID: "c4", Image: busyboxImage(), Config: api.ContainerConfig{
			CapDrop: []string{"ALL"}, CapAdd: []string{"net_bind_service", "CAP_NET_ADMIN"},
		}, NetNS: "/run/netns/skiff-c4", Mounts: []specs.Mount{
			{Destination: "/etc/resolv.conf", Type: "bind", Source: "/var/lib/skiff/containers/c4/resolv.conf", Options: []string{"rbind", "ro"}},
		}}},
		{name: "privileged", in: Input{ID: "c5", Image: busyboxImage(), Config: api.ContainerConfig{Privileged: true, User: "1000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Rootfs = rootfs
			s, err := Spec(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			// The default seccomp profile depends on the kernel the test
			// runs on (rules gated by kernel version): check its shape
			// here and leave its rules out of the golden file.
			if tt.in.Config.Privileged {
				if s.Linux.Seccomp != nil {
					t.Fatal("privileged container has a seccomp profile")
				}
			} else {
				sc := s.Linux.Seccomp
				if sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) < 10 {
					t.Fatalf("seccomp profile is not Docker's default: %+v", sc)
				}
				allowed := false
				for _, r := range sc.Syscalls {
					if r.Action == specs.ActAllow && slices.Contains(r.Names, "read") {
						allowed = true
					}
				}
				if !allowed {
					t.Fatal("default seccomp profile does not allow read(2)")
				}
				sc.Syscalls = nil
			}
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(bytes.ReplaceAll(got, []byte(rootfs), []byte("$ROOTFS")), '\n')
			golden := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("spec differs from %s (run with -update after checking):\n%s", golden, got)
			}
		})
	}
}

func TestSpecDeterministic(t *testing.T) {
	in := Input{ID: "same", Rootfs: testRootfs(t), Image: busyboxImage(), Config: api.ContainerConfig{User: "app"}}
	a, err := Spec(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Spec(in)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatal("two calls with the same input gave different specs")
	}
}

func TestSpecErrors(t *testing.T) {
	rootfs := testRootfs(t)
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"no command", Input{ID: "x"}, "no command"},
		{"entrypoint drops image cmd", Input{ID: "x", Image: v1.Config{Cmd: []string{"sh"}}, Config: api.ContainerConfig{Entrypoint: []string{}}}, "no command"},
		{"bad id", Input{ID: "../x", Image: busyboxImage()}, "container id"},
		{"unknown user", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{User: "ghost"}}, `user "ghost" not found`},
		{"unknown group", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{User: "app:ghosts"}}, `group "ghosts" not found`},
		{"empty group", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{User: "app:"}}, "empty group"},
		{"unknown cap", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{CapAdd: []string{"FLY"}}}, `unknown capability "FLY"`},
		{"bad env", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{Env: []string{"NOVALUE"}}}, "not KEY=VALUE"},
		{"empty env key", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{Env: []string{"=v"}}}, "not KEY=VALUE"},
		{"relative workdir", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{WorkingDir: "data"}}, "not an absolute path"},
		{"tiny memory", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{Resources: api.Resources{MemoryBytes: 1 << 20}}}, "minimum is 6 MiB"},
		{"negative pids", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{Resources: api.Resources{PidsLimit: -1}}}, "negative"},
		{"tiny cpu", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{Resources: api.Resources{NanoCPUs: 1000}}}, "0.01 CPU"},
		{"bad hostname", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{Hostname: "a b"}}, "hostname"},
		{"relative netns", Input{ID: "x", Image: busyboxImage(), NetNS: "netns/x"}, "network namespace"},
		{"unknown added group", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{GroupAdd: []string{"ghosts"}}}, `added group "ghosts" not found`},
		{"empty added group", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{GroupAdd: []string{""}}}, "added group is empty"},
		{"negative shm", Input{ID: "x", Image: busyboxImage(), Config: api.ContainerConfig{ShmSize: -1}}, "shm size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.Rootfs == "" {
				tt.in.Rootfs = rootfs
			}
			_, err := Spec(tt.in)
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	img := v1.Config{Entrypoint: []string{"/ep"}, Cmd: []string{"a", "b"}}
	tests := []struct {
		name string
		img  v1.Config
		cfg  api.ContainerConfig
		want []string
	}{
		{"image only", img, api.ContainerConfig{}, []string{"/ep", "a", "b"}},
		{"cmd replaces image cmd", img, api.ContainerConfig{Cmd: []string{"c"}}, []string{"/ep", "c"}},
		{"entrypoint drops image cmd", img, api.ContainerConfig{Entrypoint: []string{"/x"}}, []string{"/x"}},
		{"entrypoint and cmd", img, api.ContainerConfig{Entrypoint: []string{"/x"}, Cmd: []string{"y"}}, []string{"/x", "y"}},
		{"empty entrypoint keeps user cmd", img, api.ContainerConfig{Entrypoint: []string{}, Cmd: []string{"sh"}}, []string{"sh"}},
		{"cmd only image", v1.Config{Cmd: []string{"sh", "-c", "true"}}, api.ContainerConfig{}, []string{"sh", "-c", "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.img, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name       string
		image, usr []string
		want       []string
	}{
		{"defaults", nil, nil, []string{"PATH=" + DefaultPath, "HOSTNAME=h"}},
		{"image path wins over default", []string{"PATH=/bin"}, nil, []string{"PATH=/bin", "HOSTNAME=h"}},
		{"user wins over image", []string{"A=1", "B=2"}, []string{"B=3", "C=4"}, []string{"PATH=" + DefaultPath, "HOSTNAME=h", "A=1", "B=3", "C=4"}},
		{"user hostname wins", nil, []string{"HOSTNAME=x"}, []string{"PATH=" + DefaultPath, "HOSTNAME=x"}},
		{"empty value kept", nil, []string{"E="}, []string{"PATH=" + DefaultPath, "HOSTNAME=h", "E="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Env(tt.image, tt.usr, "h")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for _, kv := range got {
				if strings.HasPrefix(kv, "TERM=") {
					t.Fatal("TERM is set")
				}
			}
		})
	}
}

func TestResolveUser(t *testing.T) {
	rootfs := testRootfs(t)
	tests := []struct {
		name string
		spec string
		want specs.User
	}{
		{"empty is root", "", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}},
		{"name", "app", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}}},
		{"uid listed", "1000", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}}},
		{"uid unlisted", "4242", specs.User{UID: 4242, GID: 0}},
		{"uid:gid", "4242:4343", specs.User{UID: 4242, GID: 4343}},
		{"name:group", "app:staff", specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{10, 29}}},
		{"name:gid", "nobody:7", specs.User{UID: 65534, GID: 7}},
		{"primary group not repeated", "app:wheel", specs.User{UID: 1000, GID: 10, AdditionalGids: []uint32{29}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveUser(rootfs, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tt.want.UID || got.GID != tt.want.GID || !slices.Equal(got.AdditionalGids, tt.want.AdditionalGids) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveUserStaysInRootfs(t *testing.T) {
	// A rootfs whose /etc/passwd is a symlink to the host's must not read
	// the host's file: "root" must then be unknown... unless the symlink
	// resolves inside the rootfs, which is what RESOLVE_IN_ROOT does.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../../../etc/hostpasswd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostpasswd"), []byte("inside:x:7:7::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := ResolveUser(root, "inside")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 7 {
		t.Fatalf("uid %d, want 7", u.UID)
	}
	if _, err := ResolveUser(root, "daemon"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("a user from outside the rootfs resolved: %v", err)
	}
}

// TestResolveUserRefusesSpecialFiles: an /etc/passwd or /etc/group that is
// a FIFO (which would block the open forever) or a device (which would
// never end) is refused at once, with a message that names the file and
// not the rootfs's host path.
func TestResolveUserRefusesSpecialFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		make func(path string) error
		want string
	}{
		{"etc/passwd", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "/etc/passwd is a named pipe (FIFO), not a regular file"},
		{"etc/group", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "/etc/group is a named pipe (FIFO), not a regular file"},
		{"etc/passwd", func(p string) error { return syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|5) }, "/etc/passwd is a character device"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("app:x:1000:1000::/:/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(root, tc.file))
			if err := tc.make(filepath.Join(root, tc.file)); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { _, err := ResolveUser(root, "app"); errc <- err }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second):
				t.Fatal("ResolveUser blocked on a special file")
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid-input error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("the error shows the rootfs's host path: %v", err)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name       string
		add, drop  []string
		want       []string
		wantAbsent []string
	}{
		{"defaults", nil, nil, DefaultCapabilities, []string{"CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_NET_ADMIN"}},
		{"net_raw given back", []string{"net_raw"}, nil, append([]string{"CAP_NET_RAW"}, DefaultCapabilities...), nil},
		{"drop all add one", []string{"NET_ADMIN"}, []string{"ALL"}, []string{"CAP_NET_ADMIN"}, nil},
		{"add all", []string{"all"}, nil, allCapabilities, nil},
		{"drop one", nil, []string{"cap_kill"}, nil, []string{"CAP_KILL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capabilities(DefaultCapabilities, tt.add, tt.drop)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.want {
				if !slices.Contains(got, c) {
					t.Errorf("%s missing from %v", c, got)
				}
			}
			for _, c := range tt.wantAbsent {
				if slices.Contains(got, c) {
					t.Errorf("%s present in %v", c, got)
				}
			}
			if tt.want != nil && len(got) != len(tt.want) {
				t.Errorf("got %d capabilities, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestHostBounds(t *testing.T) {
	s, err := Spec(Input{ID: "h", Rootfs: testRootfs(t), Image: busyboxImage(),
		Config: api.ContainerConfig{Privileged: true}, HostRlimits: true, HostCapabilities: true})
	if err != nil {
		t.Fatal(err)
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if got := s.Process.Rlimits[0]; got.Hard != min(rl.Max, MaxNofile) || got.Soft != got.Hard {
		t.Fatalf("nofile %+v, host hard limit %d", got, rl.Max)
	}
	mask, err := hostCapabilityMask()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Process.Capabilities.Bounding {
		if mask&(1<<uint(slices.Index(allCapabilities, c))) == 0 {
			t.Fatalf("%s is not in the host's bounding set", c)
		}
	}
	if len(s.Process.Capabilities.Bounding) == 0 {
		t.Fatal("no capabilities left")
	}
}

func TestStopSignal(t *testing.T) {
	tests := []struct {
		name, image, user string
		want              syscall.Signal
		wantErr           bool
	}{
		{"default", "", "", syscall.SIGTERM, false},
		{"image", "SIGQUIT", "", syscall.SIGQUIT, false},
		{"user wins", "SIGQUIT", "int", syscall.SIGINT, false},
		{"number", "", "9", syscall.SIGKILL, false},
		{"unknown", "", "SIGNOPE", 0, true},
		{"out of range", "", "99", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StopSignal(tt.image, tt.user)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("got %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestHostArches(t *testing.T) {
	in := Input{ID: "a", Rootfs: testRootfs(t), Image: busyboxImage()}
	full, err := Spec(in)
	if err != nil {
		t.Fatal(err)
	}
	in.HostArches = true
	host, err := Spec(in)
	if err != nil {
		t.Fatal(err)
	}
	hasX32 := func(s *specs.Spec) bool { return slices.Contains(s.Linux.Seccomp.Architectures, specs.ArchX32) }
	if runtime.GOARCH == "amd64" && !hasX32(full) {
		t.Fatalf("the default profile on amd64 lists %v, without x32", full.Linux.Seccomp.Architectures)
	}
	if want := x32Supported() && hasX32(full); hasX32(host) != want {
		t.Fatalf("with HostArches, x32 in the filter = %v; the kernel runs x32: %v", hasX32(host), x32Supported())
	}
	// Only the architecture list differs.
	host.Linux.Seccomp.Architectures = full.Linux.Seccomp.Architectures
	if !reflect.DeepEqual(full.Linux.Seccomp, host.Linux.Seccomp) {
		t.Fatal("HostArches changed more of the seccomp profile than its architectures")
	}
	// The kernel's answer, checked another way where the config is readable.
	if b, err := os.ReadFile("/proc/config.gz"); err == nil && len(b) > 0 {
		out, err := exec.Command("sh", "-c", "zcat /proc/config.gz | grep -c '^CONFIG_X86_X32_ABI=y'").Output()
		if err == nil || len(out) > 0 {
			built := strings.TrimSpace(string(out)) == "1"
			if runtime.GOARCH == "amd64" && built != x32Supported() {
				t.Fatalf("CONFIG_X86_X32_ABI=y is %v, probe says %v", built, x32Supported())
			}
		}
	}
}
