package runc

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runcState is the part of runc's state.json an in-process delete reads.
type runcState struct {
	InitPid      int               `json:"init_process_pid"`
	InitStart    uint64            `json:"init_process_start"`
	CgroupPaths  map[string]string `json:"cgroup_paths"`
	IntelRdtPath string            `json:"intel_rdt_path"`
	Config       struct {
		Hooks map[string][]json.RawMessage `json:"Hooks"`
	} `json:"config"`
}

// deleteStopped does what "runc delete" does for a container whose init
// process has exited — remove its cgroups and its state directory —
// without starting runc (which costs tens of milliseconds of CPU here). It
// returns false, having changed nothing or only removed empty cgroups,
// whenever anything is unusual: not runc, no or unknown state, hooks to
// run, an Intel RDT group, an init process still there, or a cgroup that
// still holds processes. The caller then runs "runc delete --force".
func (r *Runtime) deleteStopped(id string) bool {
	if r.runtimeName != "runc" {
		return false
	}
	dir := filepath.Join(r.stateDir, "runtime", id)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return false
	}
	var st runcState
	if err := json.Unmarshal(b, &st); err != nil || st.InitPid <= 0 || st.IntelRdtPath != "" {
		return false
	}
	for _, hs := range st.Config.Hooks {
		if len(hs) > 0 {
			return false
		}
	}
	if processAlive(st.InitPid, st.InitStart) {
		return false
	}
	for _, p := range st.CgroupPaths {
		// rmdir removes only empty directories; still, touch nothing
		// but cgroups where runc keeps them.
		if !strings.HasPrefix(filepath.Clean(p), "/sys/fs/cgroup/") {
			return false
		}
		if err := removeCgroup(p); err != nil {
			return false
		}
	}
	return os.RemoveAll(dir) == nil
}

// processAlive reports whether pid is still the process that started at
// start (in clock ticks since boot, field 22 of /proc/<pid>/stat) and has
// not exited; a zombie counts as exited, as runc counts it.
func processAlive(pid int, start uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The command name is in parentheses and may hold anything.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return true
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return true
	}
	if f[0] == "Z" || f[0] == "X" {
		return false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return err != nil || st == start
}

// removeCgroup removes the cgroup directory p and any cgroups below it,
// deepest first. A missing directory is no error; one that still holds
// processes fails with EBUSY.
func removeCgroup(p string) error {
	entries, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
