package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api"
)

// Spares keeps, for the ranges it is asked to keep (an App's), one spare
// pair of namespaces made ahead of need: a pinned user namespace with the
// range's mapping and a pinned network namespace that user namespace
// owns. A container of the range takes the pair when it starts instead
// of making one with a holder, and the pair is made again in the
// background for the next start. The spare user namespace also lends its
// mapping to the idmapped mounts of the range's containers: any user
// namespace with the same mapping shifts owners the same way.
//
// A kept range has a directory DIR/N holding the pins "user" and "net".
// The pins are bind mounts and outlive the daemon; after a reboot the
// directory stays and a pair is made again when next needed. Drop
// removes a range's directory and pins. Spares is safe for concurrent
// use; work on one range is serialised.
type Spares struct {
	dir string

	mu    sync.Mutex
	locks map[int]*sync.Mutex
}

// NewSpares returns the Spares kept under dir, which is created.
func NewSpares(dir string) (*Spares, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of spare user namespaces: %w", err)
	}
	return &Spares{dir: dir, locks: map[int]*sync.Mutex{}}, nil
}

// lock locks range n's work and returns the unlock.
func (s *Spares) lock(n int) func() {
	s.mu.Lock()
	l := s.locks[n]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[n] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// rangeDir is where range n's spare pair is pinned.
func (s *Spares) rangeDir(n int) string { return filepath.Join(s.dir, strconv.Itoa(n)) }

// index is the range index of m; Spares keeps only RangeMap's ranges.
func index(m api.IDMap) (int, error) {
	n, ok := RangeIndex(m)
	if !ok {
		return 0, fmt.Errorf("%d host ids from %d are no user namespace id range", m.Size, m.HostID)
	}
	return n, nil
}

// ensureLocked makes range n's pair if it is not pinned.
func (s *Spares) ensureLocked(n int, m api.IDMap) error {
	d := s.rangeDir(n)
	user, net := filepath.Join(d, User), filepath.Join(d, Network)
	if IsPinned(user) && IsPinned(net) {
		return nil
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("create the directory of a spare user namespace: %w", err)
	}
	err := WithHolder(m, true, func(pid int) error {
		if err := Pin(pid, User, user); err != nil {
			return err
		}
		return Pin(pid, Network, net)
	})
	if err != nil {
		Unpin(user)
		Unpin(net)
	}
	return err
}

// Keep makes range m kept, and its spare pair if missing.
func (s *Spares) Keep(m api.IDMap) error {
	n, err := index(m)
	if err != nil {
		return err
	}
	defer s.lock(n)()
	return s.ensureLocked(n, m)
}

// Kept reports whether range m is kept.
func (s *Spares) Kept(m api.IDMap) bool {
	n, err := index(m)
	if err != nil {
		return false
	}
	_, err = os.Stat(s.rangeDir(n))
	return err == nil
}

// Refill makes the spare pair of range m if m is kept and has none, as
// after a Take; a range dropped meanwhile is left alone.
func (s *Spares) Refill(m api.IDMap) error {
	n, err := index(m)
	if err != nil {
		return err
	}
	defer s.lock(n)()
	if _, err := os.Stat(s.rangeDir(n)); err != nil {
		return nil
	}
	return s.ensureLocked(n, m)
}

// OpenUser keeps range m and returns an open descriptor of its spare
// user namespace, which the caller closes.
func (s *Spares) OpenUser(m api.IDMap) (int, error) {
	n, err := index(m)
	if err != nil {
		return -1, err
	}
	defer s.lock(n)()
	if err := s.ensureLocked(n, m); err != nil {
		return -1, err
	}
	fd, err := unix.Open(filepath.Join(s.rangeDir(n), User), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open a spare user namespace: %w", err)
	}
	return fd, nil
}

// Take moves range m's spare pair to userPath and netPath (with netPath
// "", the network namespace is dropped) and reports whether there was a
// pair to take; without one it changes nothing. Refill makes the next.
func (s *Spares) Take(m api.IDMap, userPath, netPath string) (bool, error) {
	n, err := index(m)
	if err != nil {
		return false, err
	}
	defer s.lock(n)()
	d := s.rangeDir(n)
	user, net := filepath.Join(d, User), filepath.Join(d, Network)
	if !IsPinned(user) || !IsPinned(net) {
		return false, nil
	}
	if err := Move(user, userPath); err != nil {
		return false, err
	}
	if netPath == "" {
		return true, Unpin(net)
	}
	if err := Move(net, netPath); err != nil {
		Unpin(userPath)
		return false, err
	}
	return true, nil
}

// Drop removes range n's pins and directory; a range not kept is fine.
func (s *Spares) Drop(n int) error {
	defer s.lock(n)()
	d := s.rangeDir(n)
	for _, k := range []string{User, Network} {
		if err := Unpin(filepath.Join(d, k)); err != nil {
			return err
		}
	}
	if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the directory of a spare user namespace: %w", err)
	}
	return nil
}

// Ranges lists the indexes of the kept ranges, in order.
func (s *Spares) Ranges() ([]int, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list spare user namespaces: %w", err)
	}
	var ns []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n >= 0 {
			ns = append(ns, n)
		}
	}
	sort.Ints(ns)
	return ns, nil
}
