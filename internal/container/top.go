package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times
// (100 on every Linux architecture skiff runs on).
const clockTicks = 100

// topTitles are the columns of Top, those of ps -ef.
var topTitles = []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}

// Top lists the processes of a running container (those in its PID
// namespace), read from /proc. A container that is not running is
// ErrConflict.
func (m *Manager) Top(ctx context.Context, ref string) (api.ContainerTop, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return api.ContainerTop{}, err
	}
	e.mu.Lock()
	status, pid, name := e.rec.State.Status, e.rec.State.Pid, e.rec.Name
	e.mu.Unlock()
	if status != api.StatusRunning || pid <= 0 {
		return api.ContainerTop{}, errdefs.Conflict("container %s is not running", name)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return api.ContainerTop{}, errdefs.Conflict("container %s is not running: its process %d is gone", name, pid)
	}
	boot, uptime := bootTime()
	out := api.ContainerTop{Titles: topTitles, Processes: [][]string{}}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if l, err := os.Readlink(d + "/ns/pid"); err != nil || l != ns {
			continue
		}
		if row, ok := topRow(d, boot, uptime); ok {
			out.Processes = append(out.Processes, row)
		}
	}
	return out, nil
}

// bootTime returns when the host booted and how long ago.
func bootTime() (time.Time, time.Duration) {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Now(), 0
	}
	f := strings.Fields(string(data))
	secs, _ := strconv.ParseFloat(f[0], 64)
	up := time.Duration(secs * float64(time.Second))
	return time.Now().Add(-up), up
}

// topRow reads one process's row from its /proc directory.
func topRow(dir string, boot time.Time, uptime time.Duration) ([]string, bool) {
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, false
	}
	st, ok := parseStat(string(stat))
	if !ok {
		return nil, false
	}
	uid := "?"
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok && len(strings.Fields(rest)) > 0 {
				uid = strings.Fields(rest)[0]
			}
		}
	}
	if u, err := user.LookupId(uid); err == nil {
		uid = u.Username
	}
	cmd := st.comm
	if raw, err := os.ReadFile(dir + "/cmdline"); err == nil && len(raw) > 0 {
		cmd = strings.TrimSpace(string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '})))
	} else {
		cmd = "[" + cmd + "]"
	}
	return st.row(filepath.Base(dir), uid, cmd, boot, uptime, time.Now()), true
}

// procStat is what Top uses of /proc/PID/stat.
type procStat struct {
	comm             string
	ppid, tty        int
	cpuTicks, startT uint64 // utime+stime, and start, in clock ticks
}

// parseStat reads a /proc/PID/stat line; comm, in parentheses, may hold
// spaces and parentheses itself.
func parseStat(s string) (procStat, bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state): ppid is f[1], tty_nr f[4], utime f[11],
	// stime f[12], starttime f[19].
	if len(f) < 20 {
		return procStat{}, false
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
	ppid, _ := strconv.Atoi(f[1])
	tty, _ := strconv.Atoi(f[4])
	return procStat{comm: s[open+1 : end], ppid: ppid, tty: tty, cpuTicks: num(11) + num(12), startT: num(19)}, true
}

// row formats the process as ps -ef does.
func (st procStat) row(pid, uid, cmd string, boot time.Time, uptime time.Duration, now time.Time) []string {
	started := boot.Add(time.Duration(st.startT) * time.Second / clockTicks)
	c := "0"
	if alive := uptime - time.Duration(st.startT)*time.Second/clockTicks; alive > 0 {
		c = strconv.FormatUint(uint64(float64(st.cpuTicks)/clockTicks/alive.Seconds()*100), 10)
	}
	stime := started.Format("15:04")
	if started.YearDay() != now.YearDay() || started.Year() != now.Year() {
		stime = started.Format("Jan02")
	}
	tty := "?"
	if major, minor := (st.tty>>8)&0xfff, (st.tty&0xff)|((st.tty>>12)&0xfff00); major >= 136 && major <= 143 {
		tty = "pts/" + strconv.Itoa((major-136)*256+minor)
	}
	secs := st.cpuTicks / clockTicks
	cpu := fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	return []string{uid, pid, strconv.Itoa(st.ppid), c, stime, tty, cpu, cmd}
}
