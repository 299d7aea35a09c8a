package runc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// rotation keeps the previous log file of a container whose log is
// capped.
//
// conmon 2.1.6's --log-size-max does not rotate: before a write would take
// the file over the cap it opens <log>.tmp, renames it over <log> and goes
// on in the new, empty file, so the old content is unlinked. To keep it,
// the Runtime holds a second hard link to the current log file,
// <dir>/.<base>.keep. When conmon's rename shows up in inotify, that link
// is the previous file: it is renamed to <log>.1 (replacing the older one)
// and the new log is linked as .keep. While no Runtime watches (daemon
// down), conmon still caps the file but the content it drops is lost;
// the next Runtime moves the last dropped file it still holds to .1.
//
// With files above 2, older files are shifted first (.1 to .2, ...), so
// <log>.1 .. <log>.(files-1) are kept; with files 1 the previous file is
// dropped.
type rotation struct {
	logPath string
	// files is how many files the log keeps, the current one included
	// (0: 2).
	files int
	mu    sync.Mutex
}

func keepPath(logPath string) string {
	return filepath.Join(filepath.Dir(logPath), "."+filepath.Base(logPath)+".keep")
}

// RotatedPath is where a capped log's previous content is kept.
func RotatedPath(logPath string) string { return logPath + ".1" }

// sync makes .keep a link to the current log, first moving a .keep that
// points at an older file to .1.
func (r *rotation) sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := keepPath(r.logPath)
	cur, err := os.Stat(r.logPath)
	if err != nil {
		return fmt.Errorf("stat log %s: %w", r.logPath, err)
	}
	old, err := os.Stat(keep)
	switch {
	case err == nil && os.SameFile(cur, old):
		return nil
	case err == nil:
		if err := r.shift(keep); err != nil {
			return fmt.Errorf("rotate log %s: %w", r.logPath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.Link(r.logPath, keep); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("link log %s: %w", r.logPath, err)
	}
	return nil
}

// shift moves the previous file keep to .1, after moving .1 to .2 and so
// on up to the number of files kept; with one file kept it is dropped.
func (r *rotation) shift(keep string) error {
	files := r.files
	if files == 0 {
		files = 2
	}
	if files == 1 {
		return os.Remove(keep)
	}
	for n := files - 2; n >= 1; n-- {
		from := fmt.Sprintf("%s.%d", r.logPath, n)
		if err := os.Rename(from, fmt.Sprintf("%s.%d", r.logPath, n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Rename(keep, RotatedPath(r.logPath))
}

// rotated is called when conmon replaced the log file.
func (r *rotation) rotated() { _ = r.sync() }

// remove drops the .keep link (the log itself stays).
func (r *rotation) remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = os.Remove(keepPath(r.logPath))
}
