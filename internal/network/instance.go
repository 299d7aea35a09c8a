package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/network/firewall"
)

// instanceDir holds one lock file per daemon instance on the host,
// <instance>.lock, holding the instance's state directory. A running
// daemon keeps its file locked.
var instanceDir = "/run/lock/skiff-network"

// lockInstance takes the instance's lock for the Manager's lifetime and
// records its state directory in it.
func lockInstance(instance, stateDir string) (*os.File, error) {
	if err := os.MkdirAll(instanceDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", instanceDir, err)
	}
	path := filepath.Join(instanceDir, instance+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errdefs.Conflict("network instance %s is in use by another daemon: give each daemon its own root", instance)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(stateDir+"\n"), 0)
	return f, nil
}

// unlockInstance releases the lock; with forget it also deletes the file.
func unlockInstance(f *os.File, forget bool) {
	if f == nil {
		return
	}
	if forget {
		os.Remove(f.Name())
	}
	f.Close()
}

// collectDeadInstances removes the host objects of instances whose daemon
// is not running and whose state directory is gone (a test's temporary
// root, a deleted installation): nothing can ever clean them up
// otherwise. The caller holds the host lock.
func (m *Manager) collectDeadInstances(ctx context.Context) {
	entries, err := os.ReadDir(instanceDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		inst, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || inst == m.cfg.Instance || !instanceRE.MatchString(inst) {
			continue
		}
		path := filepath.Join(instanceDir, e.Name())
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // its daemon runs
			continue
		}
		data, _ := os.ReadFile(path)
		stateDir := strings.TrimSpace(string(data))
		if _, err := os.Stat(stateDir); stateDir == "" || err == nil || !errors.Is(err, os.ErrNotExist) {
			f.Close() // it may come back
			continue
		}
		m.log.Info("removing the host objects of a daemon whose state is gone", "instance", inst, "state", stateDir)
		if err := purgeInstance(ctx, inst); err != nil {
			m.log.Warn("cannot remove the host objects of a gone daemon", "instance", inst, "err", err)
			f.Close()
			continue
		}
		os.Remove(path)
		f.Close()
	}
}

// purgeInstance deletes every bridge, veth and firewall chain of inst.
func purgeInstance(ctx context.Context, inst string) error {
	var errs []error
	for _, prefix := range []string{"sv" + inst, "sw" + inst, "skf" + inst + "-"} {
		names, err := linkNamesWithPrefix(prefix)
		errs = append(errs, err)
		for _, n := range names {
			errs = append(errs, deleteLink(n))
		}
	}
	fw, err := firewall.New(inst)
	if err == nil {
		err = fw.Uninstall(ctx)
	}
	return errors.Join(append(errs, err)...)
}
