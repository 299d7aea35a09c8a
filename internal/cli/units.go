package cli

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// parseBytes parses a docker-style size: a number with an optional unit
// b, k, m, g, t (powers of 1024), e.g. "256m", "1g", "512k", "1048576".
func parseBytes(flag, s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	t = strings.TrimSuffix(t, "i")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		case 't':
			mult, t = 1<<40, t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) > math.MaxInt64/2 {
		return 0, errdefs.Invalid("invalid size %q for --%s: use a number with an optional unit b, k, m or g, like 256m", s, flag)
	}
	return int64(f * float64(mult)), nil
}

// parseCPUs turns "0.5" into nano CPUs.
func parseCPUs(s string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e6 {
		return 0, errdefs.Invalid("invalid --cpus %q: use a number of CPUs like 0.5 or 2", s)
	}
	return int64(f * 1e9), nil
}

// parseRestart parses no | on-failure[:N] | always (and unless-stopped,
// taken as always).
func parseRestart(s string) (api.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	switch name {
	case "", "no":
		if hasCount {
			break
		}
		return api.RestartPolicy{Name: api.RestartNo}, nil
	case "always", "unless-stopped":
		if hasCount {
			break
		}
		return api.RestartPolicy{Name: api.RestartAlways}, nil
	case "on-failure":
		p := api.RestartPolicy{Name: api.RestartOnFailure}
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, errdefs.Invalid("invalid --restart %q: the retry count must be a whole number, like on-failure:3", s)
			}
			p.MaxRetries = n
		}
		return p, nil
	}
	return api.RestartPolicy{}, errdefs.Invalid("invalid --restart %q: use no, on-failure[:N] or always", s)
}

// parseEnvFile reads KEY=VALUE lines; blank lines and # comments are
// skipped; a bare KEY takes its value from the environment (skipped if
// unset), as docker does.
func parseEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errdefs.Invalid("read --env-file: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, errdefs.Invalid("%s:%d: invalid variable %q: use KEY=VALUE", path, n, line)
		}
		if !ok {
			if ev, set := os.LookupEnv(k); set {
				out = append(out, k+"="+ev)
			}
			continue
		}
		out = append(out, k+"="+v)
	}
	return out, sc.Err()
}

// expandEnv turns -e KEY (no =) into KEY=<value from our environment>.
func expandEnv(env []string) ([]string, error) {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, errdefs.Invalid("invalid -e %q: use KEY=VALUE", kv)
		}
		if !ok {
			if v, set := os.LookupEnv(k); set {
				out = append(out, k+"="+v)
			}
			continue
		}
		out = append(out, kv)
	}
	return out, nil
}

func parseLabels(ls []string) (map[string]string, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, l := range ls {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, errdefs.Invalid("invalid label %q: use KEY=VALUE", l)
		}
		m[k] = v
	}
	return m, nil
}
