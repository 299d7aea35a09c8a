package dockerapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func init() { addRoutes((*Server).statsRoutes) }

func (s *Server) statsRoutes() {
	if s.svc.Containers == nil {
		return
	}
	s.handle("GET", "/containers/{id}/stats", s.stats)
	s.handle("GET", "/containers/{id}/top", s.top)
}

// statsInterval is the time between two samples of a stats stream, and
// between the two samples of a one-off answer (for the CPU share).
const statsInterval = time.Second

// stats serves a container's resource usage: a sample a second with
// stream=true (the default), one answer otherwise: two samples apart
// (so the CPU share can be computed), or one with one-shot=true.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	stream := r.URL.Query().Get("stream") == "" || boolQuery(r, "stream")
	ctx := r.Context()
	prev, err := s.sample(ctx, c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if !stream && boolQuery(r, "one-shot") {
		return enc.Encode(prev)
	}
	flusher, _ := w.(http.Flusher)
	interval := statsInterval
	if !stream {
		interval = statsInterval / 2
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
		cur, err := s.sample(ctx, c)
		if err != nil {
			return nil
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := enc.Encode(cur); err != nil || !stream {
			return nil
		}
		if flusher != nil {
			flusher.Flush()
		}
		prev = cur
	}
}

// sample is one reading of c's usage; a container not running reads
// all zeros, as Docker's does.
func (s *Server) sample(ctx context.Context, c api.Container) (container.StatsResponse, error) {
	out := container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now()}
	st, err := s.svc.Containers.Stats(ctx, c.ID)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return out, noSuch(c.Name, err)
		}
		return out, nil // not running
	}
	out.Read = st.Time
	out.CPUStats = container.CPUStats{
		CPUUsage:    container.CPUUsage{TotalUsage: st.CPUUsageNanos},
		SystemUsage: systemCPUNanos(),
		OnlineCPUs:  uint32(goruntime.NumCPU()),
	}
	out.MemoryStats = container.MemoryStats{Usage: st.MemoryUsageBytes, Limit: st.MemoryLimitBytes}
	if out.MemoryStats.Limit == 0 {
		out.MemoryStats.Limit = hostMemory()
	}
	out.PidsStats = container.PidsStats{Current: st.Pids, Limit: st.PidsLimit}
	return out, nil
}

// systemCPUNanos is the host's CPU time so far (all CPUs, all states) in
// nanoseconds, from /proc/stat: the denominator of docker stats' CPU %.
func systemCPUNanos() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		return ticks * (1e9 / 100) // USER_HZ is 100 on Linux
	}
	return 0
}

// hostMemory is the machine's memory in bytes.
func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// top lists the processes of a running container: ps (with ps_args,
// default -ef) run on the host, its lines kept for the processes in
// the container's PID namespace.
func (s *Server) top(w http.ResponseWriter, r *http.Request) error {
	c, err := s.container(r.Context(), ref(r))
	if err != nil {
		return err
	}
	if c.State.Status != api.StatusRunning || c.State.Pid <= 0 {
		return errdefs.Conflict("container %s is not running", c.ID)
	}
	pids, err := namespacePIDs(c.State.Pid)
	if err != nil {
		return err
	}
	args := strings.Fields(r.URL.Query().Get("ps_args"))
	if len(args) == 0 {
		args = []string{"-ef"}
	}
	out, err := exec.CommandContext(r.Context(), "ps", args...).Output()
	if err != nil {
		return errdefs.Invalid("ps %s failed: %v: give ps_args that ps accepts", strings.Join(args, " "), err)
	}
	res, err := filterPS(string(out), pids)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// namespacePIDs lists the host PIDs of the processes in the PID
// namespace of pid.
func namespacePIDs(pid int) ([]int, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil, errdefs.Conflict("the container's process %d is gone: %v", pid, err)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		if l, err := os.Readlink(d + "/ns/pid"); err == nil && l == ns {
			n, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// filterPS keeps the lines of ps output whose PID column is in pids.
func filterPS(out string, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return container.TopResponse{}, errdefs.Invalid("ps output has no PID column: give ps_args that print it")
	}
	res := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < len(titles) {
			continue
		}
		// The last column (the command) keeps its spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		if n, err := strconv.Atoi(row[col]); err == nil && slices.Contains(pids, n) {
			res.Processes = append(res.Processes, row)
		}
	}
	return res, nil
}
