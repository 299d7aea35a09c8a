package firewall

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/lazyregexp"
)

// Firewall applies one instance's rules with the iptables binaries. It is
// safe for concurrent use: changes are serialized.
type Firewall struct {
	chains  Chains
	restore string
	save    string
	mu      sync.Mutex
}

var instanceRE = lazyregexp.New(`^[a-z0-9]{1,8}$`)

// New returns the firewall of instance (lowercase letters and digits, at
// most 8). It fails with ErrNotImplemented when iptables is not installed.
func New(instance string) (*Firewall, error) {
	if !instanceRE.MatchString(instance) {
		return nil, errdefs.Invalid("firewall instance %q must be 1 to 8 lowercase letters or digits", instance)
	}
	f := &Firewall{chains: ChainsFor(instance)}
	var err error
	if f.restore, err = exec.LookPath("iptables-restore"); err != nil {
		return nil, errdefs.NotImplemented("iptables-restore is not installed: install the iptables package")
	}
	if f.save, err = exec.LookPath("iptables-save"); err != nil {
		return nil, errdefs.NotImplemented("iptables-save is not installed: install the iptables package")
	}
	return f, nil
}

// Chains returns the names of the instance's chains.
func (f *Firewall) Chains() Chains { return f.chains }

// Install creates the chains that do not exist yet (leaving the rules of
// existing ones alone) and the jumps to them that are missing.
func (f *Firewall) Install(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	saved, err := f.saveRules(ctx)
	if err != nil {
		return err
	}
	lines := tableLines{}
	for _, ch := range f.chains.all() {
		if !saved.hasChain(ch.table, ch.name) {
			lines.add(ch.table, ":"+ch.name+" - [0:0]")
		}
	}
	for _, j := range jumps(f.chains) {
		if !saved.hasRule(j.table, j.rule()) {
			lines.add(j.table, j.insert())
		}
	}
	return f.apply(ctx, lines)
}

// SetNetworks rebuilds the RAW, FWD, IN and POST chains for nets. When
// it returns nil, the loopback guard of every network in nets is in
// place (see RawRules): only then may a bridge of nets route 127.0.0.1.
func (f *Firewall) SetNetworks(ctx context.Context, nets []Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(ctx, tableLines{
		"raw":    append([]string{":" + f.chains.Raw + " - [0:0]"}, RawRules(f.chains, nets)...),
		"filter": append([]string{":" + f.chains.Forward + " - [0:0]", ":" + f.chains.Input + " - [0:0]"}, FilterRules(f.chains, nets)...),
		"nat":    append([]string{":" + f.chains.Post + " - [0:0]"}, NATRules(f.chains, nets)...),
	})
}

// SetPorts rebuilds the DNAT chain for ports.
func (f *Firewall) SetPorts(ctx context.Context, ports []Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(ctx, tableLines{"nat": append([]string{":" + f.chains.DNAT + " - [0:0]"}, PortRules(f.chains, ports)...)})
}

// Uninstall removes the jumps and the chains. Missing ones are fine.
func (f *Firewall) Uninstall(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	saved, err := f.saveRules(ctx)
	if err != nil {
		return err
	}
	lines := tableLines{}
	for _, j := range jumps(f.chains) {
		for saved.hasRule(j.table, j.rule()) {
			lines.add(j.table, "-D"+strings.TrimPrefix(j.rule(), "-A"))
			saved.remove(j.table, j.rule())
		}
	}
	for _, ch := range f.chains.all() {
		if saved.hasChain(ch.table, ch.name) {
			lines.add(ch.table, ":"+ch.name+" - [0:0]", "-X "+ch.name)
		}
	}
	appUninstallLines(saved, f.chains, lines)
	return f.apply(ctx, lines)
}

// Rules returns the instance's rules as iptables-save prints them (chain
// declarations, jumps and the rules in its chains), for tests and
// diagnostics.
func (f *Firewall) Rules(ctx context.Context) ([]string, error) {
	saved, err := f.saveRules(ctx)
	if err != nil {
		return nil, err
	}
	mark := "SKIFF-" + strings.TrimSuffix(strings.TrimPrefix(f.chains.Forward, "SKIFF-"), "-FWD") + "-"
	var out []string
	for _, t := range tables {
		for _, l := range saved[t] {
			if strings.Contains(l, mark) {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// tableLines holds iptables-restore lines by table.
type tableLines map[string][]string

func (t tableLines) add(table string, lines ...string) { t[table] = append(t[table], lines...) }

// apply feeds the lines of every table to iptables-restore --noflush in
// one call, so the change is atomic.
func (f *Firewall) apply(ctx context.Context, lines tableLines) error {
	var in bytes.Buffer
	for _, t := range tables {
		if len(lines[t]) > 0 {
			fmt.Fprintf(&in, "*%s\n%s\nCOMMIT\n", t, strings.Join(lines[t], "\n"))
		}
	}
	if in.Len() == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, f.restore, "-w", "10", "--noflush")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		return errdefs.Unavailable("iptables-restore failed: %v: %s\ninput:\n%s", err, bytes.TrimSpace(out), in.String())
	}
	return nil
}

// savedRules holds iptables-save output by table.
type savedRules map[string][]string

// hasRule reports whether table holds exactly rule.
func (s savedRules) hasRule(table, rule string) bool {
	return slices.Contains(s[table], rule)
}

// hasChain reports whether table declares chain.
func (s savedRules) hasChain(table, chain string) bool {
	for _, l := range s[table] {
		if strings.HasPrefix(l, ":"+chain+" ") {
			return true
		}
	}
	return false
}

func (s savedRules) remove(table, line string) {
	for i, l := range s[table] {
		if l == line {
			s[table] = append(s[table][:i], s[table][i+1:]...)
			return
		}
	}
}

func (f *Firewall) saveRules(ctx context.Context) (savedRules, error) {
	out := savedRules{}
	for _, table := range tables {
		b, err := exec.CommandContext(ctx, f.save, "-t", table).Output()
		if err != nil {
			return nil, errdefs.Unavailable("iptables-save -t %s failed: %v", table, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				out[table] = append(out[table], l)
			}
		}
	}
	return out, nil
}
