package container

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm holds a space and a parenthesis; tty_nr 34817 is pts/1.
	line := "4242 (my (odd) proc) S 4200 4242 4242 34817 4242 4194560 100 0 0 0 250 150 0 0 20 0 1 0 1000 1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, ok := parseStat(line)
	if !ok || st.comm != "my (odd) proc" || st.ppid != 4200 || st.cpuTicks != 400 || st.startT != 1000 || st.tty != 34817 {
		t.Fatalf("parseStat: %+v %v", st, ok)
	}
	now := time.Date(2026, 12, 6, 23, 30, 0, 0, time.Local)
	boot := now.Add(-time.Hour)
	// Started 10s after boot, running 3590s, 4s of CPU: C is 0 (0.11%).
	row := st.row("4242", "root", "my proc --flag", boot, time.Hour, now)
	want := []string{"root", "4242", "4200", "0", "22:30", "pts/1", "00:00:04", "my proc --flag"}
	if !slices.Equal(row, want) {
		t.Fatalf("row %q, want %q", row, want)
	}
	if _, ok := parseStat("garbage"); ok {
		t.Fatal("parseStat accepted garbage")
	}
}

// TestTopRowSelf reads the test's own process: its row names it.
func TestTopRowSelf(t *testing.T) {
	boot, up := bootTime()
	pid := strconv.Itoa(os.Getpid())
	row, ok := topRow("/proc/"+pid, boot, up)
	if !ok || row[1] != pid || row[2] != strconv.Itoa(os.Getppid()) || len(row) != len(topTitles) {
		t.Fatalf("row of the test process: %q", row)
	}
}
