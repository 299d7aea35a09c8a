package build

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// kv is an ordered list of variables; a later Set of a key replaces it in
// place.
type kv struct {
	keys []string
	vals map[string]string
}

func (l *kv) Set(k, v string) {
	if l.vals == nil {
		l.vals = map[string]string{}
	}
	if _, ok := l.vals[k]; !ok {
		l.keys = append(l.keys, k)
	}
	l.vals[k] = v
}

// Get implements shell.EnvGetter.
func (l *kv) Get(k string) (string, bool) {
	v, ok := l.vals[k]
	return v, ok
}

// Keys implements shell.EnvGetter.
func (l *kv) Keys() []string { return slices.Clone(l.keys) }

func (l *kv) clone() *kv {
	c := &kv{keys: slices.Clone(l.keys), vals: make(map[string]string, len(l.vals))}
	for k, v := range l.vals {
		c.vals[k] = v
	}
	return c
}

// stageEnv is what $VAR expands to inside a stage: the image's ENV, then
// the stage's ARGs (an ENV always wins over an ARG of the same name, as in
// docker).
type stageEnv struct {
	env  []string
	args *kv
}

// Get implements shell.EnvGetter.
func (e stageEnv) Get(k string) (string, bool) {
	if v, ok := envLookup(e.env, k); ok {
		return v, true
	}
	return e.args.Get(k)
}

// Keys implements shell.EnvGetter.
func (e stageEnv) Keys() []string {
	keys := e.args.Keys()
	for _, kv := range e.env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func envLookup(env []string, k string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if key, v, _ := strings.Cut(env[i], "="); key == k {
			return v, true
		}
	}
	return "", false
}

// envSet sets k in a KEY=VALUE list, in place when present.
func envSet(env []string, k, v string) []string {
	for i, e := range env {
		if key, _, _ := strings.Cut(e, "="); key == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// defaultPath is the PATH docker gives images that set none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// platform is an OS/architecture pair with an optional variant.
type platform struct {
	OS, Arch, Variant string
}

func (p platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// hostPlatform is the platform skiff runs on.
func hostPlatform() platform { return platform{OS: "linux", Arch: runtime.GOARCH} }

// parsePlatform parses "os/arch[/variant]", normalising common aliases.
func parsePlatform(s string) (platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, errdefs.Invalid("platform %q is not os/arch[/variant], for example linux/amd64 or linux/arm64", s)
	}
	p := platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	switch p.Arch {
	case "x86_64", "x86-64":
		p.Arch = "amd64"
	case "aarch64":
		p.Arch = "arm64"
	case "armhf":
		p.Arch, p.Variant = "arm", "v7"
	case "i386", "i686":
		p.Arch = "386"
	}
	if p.Arch == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	return p, nil
}

// platformArgs adds the automatic platform ARGs docker defines.
func platformArgs(l *kv, target, build platform) {
	for _, a := range []struct {
		prefix string
		p      platform
	}{{"TARGET", target}, {"BUILD", build}} {
		l.Set(a.prefix+"PLATFORM", a.p.String())
		l.Set(a.prefix+"OS", a.p.OS)
		l.Set(a.prefix+"ARCH", a.p.Arch)
		l.Set(a.prefix+"VARIANT", a.p.Variant)
	}
}

// signals are the Linux signal names STOPSIGNAL accepts, without "SIG".
var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
	"FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
	"TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
	"TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26,
	"PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}

// checkSignal validates a STOPSIGNAL value: a number 1–64, a name with or
// without SIG, or RTMIN+n / RTMAX-n.
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return errdefs.Invalid("STOPSIGNAL %s: signal numbers go from 1 to 64", s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if _, ok := signals[name]; ok {
		return nil
	}
	for _, rt := range []struct{ prefix, sep string }{{"RTMIN", "+"}, {"RTMAX", "-"}} {
		if name == rt.prefix {
			return nil
		}
		if rest, ok := strings.CutPrefix(name, rt.prefix+rt.sep); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
				return nil
			}
		}
	}
	return errdefs.Invalid("STOPSIGNAL %s: unknown signal; use a name such as SIGTERM or SIGINT, or a number", s)
}

// maxExposed bounds the ports one EXPOSE range may add.
const maxExposed = 1 << 16

// parsePorts turns EXPOSE arguments ("80", "8080/udp", "7000-7002",
// "127.0.0.1:80:8080/tcp") into sorted "port/proto" keys.
func parsePorts(specs []string) ([]string, error) {
	var out []string
	for _, spec := range specs {
		rawPort, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, errdefs.Invalid("EXPOSE %s: protocol %q is not tcp, udp or sctp", spec, proto)
		}
		if i := strings.LastIndex(rawPort, ":"); i >= 0 {
			rawPort = rawPort[i+1:]
		}
		lo, hi, isRange := strings.Cut(rawPort, "-")
		start, err := parsePort(lo)
		if err != nil {
			return nil, errdefs.Invalid("EXPOSE %s: %w", spec, err)
		}
		end := start
		if isRange {
			if end, err = parsePort(hi); err != nil {
				return nil, errdefs.Invalid("EXPOSE %s: %w", spec, err)
			}
			if end < start {
				return nil, errdefs.Invalid("EXPOSE %s: the range ends before it starts", spec)
			}
		}
		if len(out)+end-start+1 > maxExposed {
			return nil, errdefs.Invalid("EXPOSE %s: too many ports", spec)
		}
		for p := start; p <= end; p++ {
			out = append(out, fmt.Sprintf("%d/%s", p, proto))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

// passwdEntry is a line of /etc/passwd or /etc/group: a name, an id and,
// for users, the primary group.
type passwdEntry struct {
	name     string
	id, gid  int
	hasGroup bool
}

// parsePasswd reads /etc/passwd (name:x:uid:gid:...) or /etc/group
// (name:x:gid:...) entries.
func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		e := passwdEntry{name: f[0], id: id}
		if len(f) > 3 {
			if gid, err := strconv.Atoi(f[3]); err == nil {
				e.gid, e.hasGroup = gid, true
			}
		}
		out = append(out, e)
	}
	return out
}
