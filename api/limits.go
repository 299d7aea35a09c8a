package api

import (
	"strconv"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// Ulimit is a resource limit of a container's process (docker's
// --ulimit). Soft and Hard of -1 mean unlimited.
type Ulimit struct {
	// Name is docker's name of the limit: nofile, nproc, core, ...
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// UlimitNames are the limits a Ulimit may name (docker's names; each is
// RLIMIT_ and the name in capitals).
var UlimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// ParseUlimit parses "NAME=SOFT[:HARD]" (HARD defaults to SOFT; a value
// may be "unlimited" or -1).
func ParseUlimit(s string) (Ulimit, error) {
	name, vals, ok := strings.Cut(s, "=")
	softS, hardS, hasHard := strings.Cut(vals, ":")
	if !hasHard {
		hardS = softS
	}
	soft, serr := parseLimit(softS)
	hard, herr := parseLimit(hardS)
	if !ok || serr != nil || herr != nil {
		return Ulimit{}, errdefs.Invalid("invalid ulimit %q: use NAME=SOFT[:HARD], such as nofile=1024:2048", s)
	}
	u := Ulimit{Name: name, Soft: soft, Hard: hard}
	return u, checkUlimit(u)
}

func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n < -1 {
		err = strconv.ErrRange
	}
	return n, err
}

// checkUlimit says whether u names a known limit and its soft limit is
// not above its hard one.
func checkUlimit(u Ulimit) error {
	known := false
	for _, n := range UlimitNames {
		known = known || n == u.Name
	}
	if !known {
		return errdefs.Invalid("unknown ulimit %q: use one of %s", u.Name, strings.Join(UlimitNames, ", "))
	}
	if u.Soft < -1 || u.Hard < -1 {
		return errdefs.Invalid("ulimit %s: limits must be 0 or more, or unlimited", u.Name)
	}
	if u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
		return errdefs.Invalid("ulimit %s: the soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
	}
	return nil
}

// ParseSysctl splits "KEY=VALUE".
func ParseSysctl(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", errdefs.Invalid("invalid sysctl %q: use KEY=VALUE, such as net.ipv4.ip_unprivileged_port_start=80", s)
	}
	return key, value, nil
}

// CheckLimits says whether a container's Ulimits are known and consistent,
// each named once, and whether its Sysctls are namespaced ones a
// container may set (docker's list: kernel.msg*, kernel.sem, kernel.shm*,
// fs.mqueue.*, and net.* unless the container shares the host's
// network).
func CheckLimits(c *ContainerConfig) error {
	seen := map[string]bool{}
	for _, u := range c.Ulimits {
		if err := checkUlimit(u); err != nil {
			return err
		}
		if seen[u.Name] {
			return errdefs.Invalid("ulimit %s is given twice: give each limit once", u.Name)
		}
		seen[u.Name] = true
	}
	for k := range c.Sysctls {
		if err := checkSysctl(k, c.Network); err != nil {
			return err
		}
	}
	return nil
}

func checkSysctl(key, network string) error {
	if strings.ContainsAny(key, "/ \t\n") || strings.Contains(key, "..") {
		return errdefs.Invalid("invalid sysctl %q: use a dotted name such as net.ipv4.ip_forward", key)
	}
	switch {
	case key == "kernel.sem", strings.HasPrefix(key, "kernel.msg"), strings.HasPrefix(key, "kernel.shm"),
		strings.HasPrefix(key, "fs.mqueue."):
		return nil
	case strings.HasPrefix(key, "net."):
		if network == NetworkHost {
			return errdefs.Invalid("sysctl %q is refused: with --network host it would change the host's network settings", key)
		}
		return nil
	}
	return errdefs.Invalid("sysctl %q is refused: it is not namespaced, so it would change the host; a container may set only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.*", key)
}
