package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// psFilterKeys are the keys `ps --filter` takes, as docker's.
var psFilterKeys = []string{"ancestor", "exited", "health", "id", "label", "name", "network", "status"}

// psHealthValues are the values of ps --filter health=.
var psHealthValues = []string{api.HealthStarting, api.HealthHealthy, api.HealthUnhealthy, "none"}

// psFilter is the parsed --filter flags of ps: values of one key match
// if any matches, every key must match.
type psFilter map[string][]string

// parsePsFilter parses KEY=VALUE filters, refusing unknown keys and
// statuses with the list of known ones.
func parsePsFilter(flags []string) (psFilter, error) {
	f := psFilter{}
	for _, fl := range flags {
		k, v, ok := strings.Cut(fl, "=")
		if !ok || v == "" {
			return nil, errdefs.Invalid("--filter %q: give KEY=VALUE, with KEY one of %s", fl, strings.Join(psFilterKeys, ", "))
		}
		if !contains(psFilterKeys, k) {
			return nil, errdefs.Invalid("--filter %q: unknown key %q: use one of %s", fl, k, strings.Join(psFilterKeys, ", "))
		}
		switch k {
		case "status":
			ok := []string{api.StatusCreated, api.StatusRunning, api.StatusRestarting, api.StatusExited, api.StatusStopping}
			if !contains(ok, v) {
				return nil, errdefs.Invalid("--filter status=%s: use one of %s", v, strings.Join(ok, ", "))
			}
		case "health":
			if !contains(psHealthValues, v) {
				return nil, errdefs.Invalid("--filter health=%s: use one of %s", v, strings.Join(psHealthValues, ", "))
			}
		case "exited":
			if _, err := strconv.Atoi(v); err != nil {
				return nil, errdefs.Invalid("--filter exited=%s: give an exit code, like exited=0", v)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// needsAll says whether the filter asks for stopped containers, which
// docker then lists without -a.
func (f psFilter) needsAll() bool {
	if len(f["exited"]) > 0 {
		return true
	}
	for _, s := range f["status"] {
		if s != api.StatusRunning {
			return true
		}
	}
	return false
}

// match says whether c passes every key of the filter.
func (f psFilter) match(c api.Container) bool {
	for k, vals := range f {
		ok := false
		for _, v := range vals {
			if f.matchOne(k, v, c) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (psFilter) matchOne(k, v string, c api.Container) bool {
	switch k {
	case "id":
		return strings.HasPrefix(c.ID, v)
	case "name":
		return strings.Contains(c.Name, v)
	case "label":
		lk, lv, hasValue := strings.Cut(v, "=")
		got, ok := c.Config.Labels[lk]
		return ok && (!hasValue || got == lv)
	case "status":
		return c.State.Status == v
	case "health":
		if c.State.Health == nil {
			return v == "none"
		}
		return c.State.Health.Status == v
	case "exited":
		code, _ := strconv.Atoi(v)
		return c.State.Status == api.StatusExited && c.State.ExitCode == code
	case "ancestor":
		return c.Config.Image == v || c.ImageRef == v || strings.HasPrefix(c.ImageID, v) ||
			strings.TrimPrefix(c.ImageID, "sha256:") == strings.TrimPrefix(v, "sha256:") ||
			c.Config.Image == v+":latest"
	case "network":
		return containerNetwork(c) == v
	}
	return false
}

func containerNetwork(c api.Container) string {
	if c.NetworkSettings != nil && c.NetworkSettings.Network != "" {
		return c.NetworkSettings.Network
	}
	return c.Config.Network
}

// psRow is what a `ps --format` template sees: docker's field names.
type psRow struct {
	c   api.Container
	now time.Time
}

func (r psRow) ID() string         { return shortID(r.c.ID) }
func (r psRow) Names() string      { return r.c.Name }
func (r psRow) Image() string      { return imageText(r.c) }
func (r psRow) Command() string    { return strconv.Quote(truncate(quoteCommand(r.c.Process), 20)) }
func (r psRow) CreatedAt() string  { return r.c.Created.Format("2006-01-02 15:04:05 -0700 MST") }
func (r psRow) RunningFor() string { return ago(r.c.Created, r.now) }
func (r psRow) Ports() string      { return portsText(r.c) }
func (r psRow) State() string      { return r.c.State.Status }
func (r psRow) Status() string     { return statusText(r.c.State, r.now) }
func (r psRow) Networks() string   { return containerNetwork(r.c) }
func (r psRow) Label(k string) string {
	return r.c.Config.Labels[k]
}

// Labels are the labels as docker prints them: k=v pairs, sorted.
func (r psRow) Labels() string {
	var out []string
	for k, v := range r.c.Config.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Mounts are the mount sources (volume names or host paths).
func (r psRow) Mounts() string {
	var out []string
	for _, m := range r.c.Config.Mounts {
		out = append(out, m.Source)
	}
	return strings.Join(out, ",")
}

func (r psRow) String() string { return fmt.Sprintf("%s %s", r.ID(), r.Names()) }
