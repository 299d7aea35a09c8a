package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"skiff.dev/skiff/api/errdefs"
)

// DefaultRoot is where the cgroup hierarchies are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Layout names a cgroup layout: LayoutV1, LayoutV2 or LayoutHybrid.
type Layout string

// The layouts.
const (
	LayoutV1     Layout = "v1"
	LayoutV2     Layout = "v2"
	LayoutHybrid Layout = "hybrid"
)

// Detect reports the layout of the cgroup tree mounted at root.
func Detect(root string) (Layout, error) {
	if exists(filepath.Join(root, "cgroup.controllers")) {
		return LayoutV2, nil
	}
	v1 := false
	for _, c := range []string{"memory", "cpuacct", "pids", "cpu,cpuacct"} {
		if exists(filepath.Join(root, c, "cgroup.procs")) {
			v1 = true
			break
		}
	}
	if !v1 {
		return "", errdefs.Unavailable("no cgroup hierarchy found at %s: mount cgroup2 there, or the v1 memory, cpuacct and pids controllers under it", root)
	}
	if exists(filepath.Join(root, "unified", "cgroup.controllers")) {
		return LayoutHybrid, nil
	}
	return LayoutV1, nil
}

// Stats are a cgroup's counters. Limits are 0 when unlimited.
type Stats struct {
	CPUUsageNanos uint64
	// MemoryUsageBytes is the memory charged to the cgroup less the
	// inactive page cache (what `docker stats` shows).
	MemoryUsageBytes uint64
	MemoryLimitBytes uint64
	Pids             uint64
	PidsLimit        uint64
	// OOMKills counts the processes the OOM killer killed in the cgroup.
	OOMKills uint64
}

// Reader reads counters from one cgroup tree.
type Reader struct {
	root   string
	layout Layout
}

// NewReader detects the layout of the tree at root (DefaultRoot if empty)
// and returns a Reader for it.
func NewReader(root string) (*Reader, error) {
	if root == "" {
		root = DefaultRoot
	}
	l, err := Detect(root)
	if err != nil {
		return nil, err
	}
	return &Reader{root: root, layout: l}, nil
}

// Layout returns the layout of the tree.
func (r *Reader) Layout() Layout { return r.layout }

// dir is the directory of cgroupsPath in controller's hierarchy (the
// controller is ignored on v2).
func (r *Reader) dir(controller, cgroupsPath string) string {
	p := filepath.Join("/", cgroupsPath)
	if r.layout == LayoutV2 {
		return filepath.Join(r.root, p)
	}
	return filepath.Join(r.root, controller, p)
}

// Exists reports whether any of the container's cgroup directories still
// exists (memory, pids, cpu, cpuacct on v1; the one directory on v2).
func (r *Reader) Exists(cgroupsPath string) bool {
	if r.layout == LayoutV2 {
		return exists(r.dir("", cgroupsPath))
	}
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "devices", "freezer", "blkio", "cpuset"} {
		if exists(r.dir(c, cgroupsPath)) {
			return true
		}
	}
	return false
}

// Read samples the counters of the cgroup at cgroupsPath. A cgroup that
// does not exist is ErrNotFound.
func (r *Reader) Read(cgroupsPath string) (Stats, error) {
	if r.layout == LayoutV2 {
		return r.readV2(cgroupsPath)
	}
	return r.readV1(cgroupsPath)
}

// OOMKills returns the cgroup's OOM kill count.
func (r *Reader) OOMKills(cgroupsPath string) (uint64, error) {
	if r.layout == LayoutV2 {
		return keyed(filepath.Join(r.dir("", cgroupsPath), "memory.events"), "oom_kill")
	}
	return keyed(filepath.Join(r.dir("memory", cgroupsPath), "memory.oom_control"), "oom_kill")
}

func (r *Reader) readV1(cgroupsPath string) (Stats, error) {
	var s Stats
	var err error
	mem := r.dir("memory", cgroupsPath)
	if !exists(mem) {
		return s, errdefs.NotFound("cgroup %s not found in the memory hierarchy: the container has no cgroup (deleted, or never created)", cgroupsPath)
	}
	cpuacct := r.dir("cpuacct", cgroupsPath)
	if s.CPUUsageNanos, err = single(filepath.Join(cpuacct, "cpuacct.usage")); err != nil {
		return s, err
	}
	usage, err := single(filepath.Join(mem, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	inactive, err := keyed(filepath.Join(mem, "memory.stat"), "total_inactive_file")
	if err != nil {
		return s, err
	}
	s.MemoryUsageBytes = usage - min(usage, inactive)
	if s.MemoryLimitBytes, err = single(filepath.Join(mem, "memory.limit_in_bytes")); err != nil {
		return s, err
	}
	if s.MemoryLimitBytes >= 1<<62 { // v1 writes "unlimited" as the largest page-aligned int64
		s.MemoryLimitBytes = 0
	}
	pids := r.dir("pids", cgroupsPath)
	if s.Pids, err = single(filepath.Join(pids, "pids.current")); err != nil {
		return s, err
	}
	if s.PidsLimit, err = single(filepath.Join(pids, "pids.max")); err != nil {
		return s, err
	}
	if s.OOMKills, err = keyed(filepath.Join(mem, "memory.oom_control"), "oom_kill"); err != nil {
		return s, err
	}
	return s, nil
}

func (r *Reader) readV2(cgroupsPath string) (Stats, error) {
	var s Stats
	var err error
	dir := r.dir("", cgroupsPath)
	if !exists(dir) {
		return s, errdefs.NotFound("cgroup %s not found: the container has no cgroup (deleted, or never created)", cgroupsPath)
	}
	usec, err := keyed(filepath.Join(dir, "cpu.stat"), "usage_usec")
	if err != nil {
		return s, err
	}
	s.CPUUsageNanos = usec * 1000
	usage, err := single(filepath.Join(dir, "memory.current"))
	if err != nil {
		return s, err
	}
	inactive, err := keyed(filepath.Join(dir, "memory.stat"), "inactive_file")
	if err != nil {
		return s, err
	}
	s.MemoryUsageBytes = usage - min(usage, inactive)
	if s.MemoryLimitBytes, err = single(filepath.Join(dir, "memory.max")); err != nil {
		return s, err
	}
	if s.Pids, err = single(filepath.Join(dir, "pids.current")); err != nil {
		return s, err
	}
	if s.PidsLimit, err = single(filepath.Join(dir, "pids.max")); err != nil {
		return s, err
	}
	if s.OOMKills, err = keyed(filepath.Join(dir, "memory.events"), "oom_kill"); err != nil {
		return s, err
	}
	return s, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readFile(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("cgroup file %s not found: the cgroup is gone or its controller is not enabled", p)
	}
	if err != nil {
		return nil, fmt.Errorf("read cgroup file: %w", err)
	}
	return b, nil
}

// single reads a file holding one number, or "max" (read as 0).
func single(p string) (uint64, error) {
	b, err := readFile(p)
	if err != nil {
		return 0, err
	}
	v := string(bytes.TrimSpace(b))
	if v == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return n, nil
}

// keyed reads the value of key in a "key value" per line file; a missing
// key reads as 0 (older kernels lack some counters).
func keyed(p, key string) (uint64, error) {
	b, err := readFile(p)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %s: %w", p, key, err)
		}
		return n, nil
	}
	return 0, nil
}
