package firewall

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"skiff.dev/skiff/internal/errdefs"
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
	var filter, nat []string
	addTo := func(table string, line string) {
		if table == "nat" {
			nat = append(nat, line)
		} else {
			filter = append(filter, line)
		}
	}
	for _, ch := range []struct{ table, name string }{
		{"filter", f.chains.Forward}, {"filter", f.chains.Input}, {"nat", f.chains.Post}, {"nat", f.chains.DNAT},
	} {
		if !saved.hasChain(ch.table, ch.name) {
			addTo(ch.table, ":"+ch.name+" - [0:0]")
		}
	}
	for _, j := range jumps(f.chains) {
		if !saved.hasRule(j.table, j.rule()) {
			addTo(j.table, j.insert())
		}
	}
	return f.apply(ctx, filter, nat)
}

// SetNetworks rebuilds the FWD, IN and POST chains for nets.
func (f *Firewall) SetNetworks(ctx context.Context, nets []Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	filter := append([]string{":" + f.chains.Forward + " - [0:0]", ":" + f.chains.Input + " - [0:0]"}, FilterRules(f.chains, nets)...)
	nat := append([]string{":" + f.chains.Post + " - [0:0]"}, NATRules(f.chains, nets)...)
	return f.apply(ctx, filter, nat)
}

// SetPorts rebuilds the DNAT chain for ports.
func (f *Firewall) SetPorts(ctx context.Context, ports []Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	nat := append([]string{":" + f.chains.DNAT + " - [0:0]"}, PortRules(f.chains, ports)...)
	return f.apply(ctx, nil, nat)
}

// Uninstall removes the jumps and the chains. Missing ones are fine.
func (f *Firewall) Uninstall(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	saved, err := f.saveRules(ctx)
	if err != nil {
		return err
	}
	var filter, nat []string
	for _, j := range jumps(f.chains) {
		for saved.hasRule(j.table, j.rule()) {
			line := "-D" + strings.TrimPrefix(j.rule(), "-A")
			if j.table == "nat" {
				nat = append(nat, line)
			} else {
				filter = append(filter, line)
			}
			saved.remove(j.table, j.rule())
		}
	}
	for _, ch := range []struct{ table, name string }{
		{"filter", f.chains.Forward}, {"filter", f.chains.Input}, {"nat", f.chains.Post}, {"nat", f.chains.DNAT},
	} {
		if !saved.hasChain(ch.table, ch.name) {
			continue
		}
		lines := []string{":" + ch.name + " - [0:0]", "-X " + ch.name}
		if ch.table == "nat" {
			nat = append(nat, lines...)
		} else {
			filter = append(filter, lines...)
		}
	}
	return f.apply(ctx, filter, nat)
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
	for _, t := range []string{"filter", "nat"} {
		for _, l := range saved[t] {
			if strings.Contains(l, mark) {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// apply feeds the lines of each table to iptables-restore --noflush in
// one call, so the change is atomic.
func (f *Firewall) apply(ctx context.Context, filter, nat []string) error {
	if len(filter) == 0 && len(nat) == 0 {
		return nil
	}
	var in bytes.Buffer
	for _, t := range []struct {
		name  string
		lines []string
	}{{"filter", filter}, {"nat", nat}} {
		if len(t.lines) == 0 {
			continue
		}
		fmt.Fprintf(&in, "*%s\n%s\nCOMMIT\n", t.name, strings.Join(t.lines, "\n"))
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
	for _, table := range []string{"filter", "nat"} {
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
