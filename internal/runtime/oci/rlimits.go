package oci

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// rlimitResources are the getrlimit resources of api.UlimitNames.
var rlimitResources = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE,
	"nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS,
	"rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING,
	"stack": unix.RLIMIT_STACK,
}

// Rlimits is the process's rlimits: the ulimits asked for, and
// RLIMIT_NOFILE at MaxNofile (or the host's hard limit when lower and
// host says to respect it) unless nofile is among them. When host is
// set, a ulimit above the calling process's hard limit is refused:
// raising it needs CAP_SYS_RESOURCE.
func Rlimits(ulimits []api.Ulimit, host bool) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	hasNofile := false
	for _, u := range ulimits {
		res, ok := rlimitResources[u.Name]
		if !ok {
			return nil, errdefs.Invalid("unknown ulimit %q: use one of %s", u.Name, strings.Join(api.UlimitNames, ", "))
		}
		soft, hard := rlimValue(u.Soft), rlimValue(u.Hard)
		if host {
			var rl unix.Rlimit
			if err := unix.Getrlimit(res, &rl); err != nil {
				return nil, fmt.Errorf("read the host's %s limit: %w", u.Name, err)
			}
			if hard > rl.Max {
				return nil, errdefs.Invalid("ulimit %s=%s is above the host's hard limit %s: ask for %s or less",
					u.Name, rlimString(hard), rlimString(rl.Max), rlimString(rl.Max))
			}
		}
		hasNofile = hasNofile || u.Name == "nofile"
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: soft, Hard: hard})
	}
	if hasNofile {
		return out, nil
	}
	nofile, err := nofileLimit(host)
	if err != nil {
		return nil, err
	}
	return append([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}, out...), nil
}

// rlimValue is v as an rlimit, -1 being RLIM_INFINITY.
func rlimValue(v int64) uint64 {
	if v < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(v)
}

func rlimString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprint(v)
}
