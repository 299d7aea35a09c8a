package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"skiff.dev/skiff/api"
)

// humanDuration says how long d is the way docker ps does.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", h/24/365)
	}
}

func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// statusText is the STATUS column of skiff ps.
func statusText(s api.ContainerState, now time.Time) string {
	switch s.Status {
	case api.StatusRunning:
		return "Up " + humanDuration(now.Sub(s.StartedAt)) + healthText(s.Health)
	case api.StatusStopping:
		return "Stopping"
	case api.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s", s.ExitCode, ago(s.FinishedAt, now))
	case api.StatusExited:
		code := fmt.Sprintf("%d", s.ExitCode)
		if s.OOMKilled {
			code += ", OOMKilled"
		}
		if s.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%s)", code)
		}
		return fmt.Sprintf("Exited (%s) %s", code, ago(s.FinishedAt, now))
	case api.StatusCreated:
		return "Created"
	}
	return s.Status
}

// healthText is what docker adds to a running container's status for its
// health: " (healthy)", " (unhealthy)", " (health: starting)" or nothing.
func healthText(h *api.Health) string {
	switch {
	case h == nil:
		return ""
	case h.Status == api.HealthStarting:
		return " (health: starting)"
	}
	return " (" + h.Status + ")"
}

// shortID is the 12-character form of an ID, without "sha256:".
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// quoteCommand renders a process as docker ps does.
func quoteCommand(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = fmt.Sprintf("%q", a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

// humanSize prints bytes with binary units the way docker does (MB = 1e6).
func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 {
			if u == "B" {
				return fmt.Sprintf("%d%s", n, u)
			}
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.3gPB", f)
}

// humanBytes prints binary sizes (MiB) for memory.
func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.4g%s", f, u)
		}
		f /= 1024
	}
	return fmt.Sprintf("%.4gPiB", f)
}

// table is how a list command prints one kind of resource: -o json and
// -o yaml print the items as they are, -q their short IDs, and otherwise
// a header and the rows of each item, aligned (-o wide: more columns).
type table[T any] struct {
	header, wideHeader string // tab-separated column names
	// id is what -q prints, shortened.
	id func(T) string
	// rows writes an item's tab-separated rows, each ending in "\n".
	rows func(w io.Writer, item T, wide bool, now time.Time)
}

// print writes items to w the way output and quiet ask.
func (t table[T]) print(w io.Writer, output string, quiet bool, items []T) error {
	if output == outJSON || output == outYAML {
		return printStructured(w, output, items)
	}
	if quiet {
		for _, it := range items {
			fmt.Fprintln(w, shortID(t.id(it)))
		}
		return nil
	}
	wide := output == outWide
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if wide {
		fmt.Fprintln(tw, t.wideHeader)
	} else {
		fmt.Fprintln(tw, t.header)
	}
	now := time.Now()
	for _, it := range items {
		t.rows(tw, it, wide, now)
	}
	return tw.Flush()
}
