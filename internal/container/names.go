package container

import (
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

var (
	adjectives = []string{"brave", "calm", "eager", "fair", "gentle", "happy", "jolly", "keen", "lively", "merry", "nimble", "proud", "quiet", "rapid", "steady", "swift", "tidy", "vivid", "witty", "zesty"}
	nouns      = []string{"anchor", "beacon", "breeze", "compass", "current", "dune", "harbor", "island", "keel", "lagoon", "mast", "oar", "pier", "reef", "sail", "shoal", "tide", "wave", "wharf", "wind"}
)

// randomNameLocked picks an unused adjective_noun name; the caller holds m.mu.
func (m *Manager) randomNameLocked() string {
	for i := 0; ; i++ {
		name := adjectives[rand.IntN(len(adjectives))] + "_" + nouns[rand.IntN(len(nouns))]
		if i > 50 {
			name += "_" + randSuffix()
		}
		if _, taken := m.byName[name]; !taken {
			return name
		}
	}
}

func randSuffix() string {
	const digits = "0123456789"
	b := make([]byte, 4)
	for i := range b {
		b[i] = digits[rand.IntN(10)]
	}
	return string(b)
}

// ParseSignal parses "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, ok := atoi(t); ok {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalid("invalid signal %q: numbers go from 1 to 64", s)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(t, "SIG") {
		t = "SIG" + t
	}
	if sig := unix.SignalNum(t); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.Invalid("unknown signal %q: use a name like SIGTERM or a number", s)
}

func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 1000 {
			return n, true
		}
	}
	return n, true
}

func sortContainers(cs []api.Container) {
	slices.SortFunc(cs, func(a, b api.Container) int { return a.Created.Compare(b.Created) })
}
