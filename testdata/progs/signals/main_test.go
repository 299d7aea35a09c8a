package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run the command (SIGNALS_RUN_MAIN=1).
func TestMain(m *testing.M) {
	if os.Getenv("SIGNALS_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name string
		sigs []os.Signal
		opts options
		code int
		out  string
	}{
		{"term", []os.Signal{syscall.SIGTERM}, options{}, 0, "got SIGTERM\nexiting\n"},
		{"int", []os.Signal{syscall.SIGINT}, options{code: 3}, 3, "got SIGINT\nexiting\n"},
		{"others first", []os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGUSR2}, options{}, 0, "got SIGHUP\ngot SIGUSR1\ngot SIGTERM\nexiting\n"},
		{"ignored", []os.Signal{syscall.SIGTERM, syscall.SIGINT}, options{ignore: true, code: 4}, 4, "got SIGTERM\nignoring it\ngot SIGINT\nignoring it\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := make(chan os.Signal, len(tt.sigs))
			for _, s := range tt.sigs {
				sigs <- s
			}
			close(sigs)
			var out bytes.Buffer
			if code := handle(sigs, tt.opts, &out); code != tt.code || out.String() != tt.out {
				t.Errorf("handle = %d, %q; want %d, %q", code, out.String(), tt.code, tt.out)
			}
		})
	}
}

// TestSignals runs the command and sends it real signals.
func TestSignals(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		send    []syscall.Signal
		code    int // -1: killed by SIGKILL
		out     string
		minTime time.Duration
	}{
		{"graceful", nil, []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM}, 0, "ready\ngot SIGHUP\ngot SIGTERM\nexiting\n", 0},
		{"slow graceful", []string{"-delay", "300ms", "-code", "5"}, []syscall.Signal{syscall.SIGTERM}, 5, "ready\ngot SIGTERM\nexiting\n", 300 * time.Millisecond},
		{"ignores SIGTERM", []string{"-ignore"}, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}, -1, "ready\ngot SIGTERM\nignoring it\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tt.args...)
			cmd.Env = append(os.Environ(), "SIGNALS_RUN_MAIN=1")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			r := bufio.NewReader(stdout)
			var out strings.Builder
			readLine := func() string {
				l, _ := r.ReadString('\n')
				out.WriteString(l)
				return l
			}
			if l := readLine(); l != "ready\n" {
				t.Fatalf("first line %q", l)
			}
			start := time.Now()
			for _, s := range tt.send {
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
				if s != syscall.SIGKILL {
					readLine() // "got ..." shows it was handled before the next
				}
				if tt.code == -1 && s == syscall.SIGTERM {
					readLine() // "ignoring it"
				}
			}
			for readLine() != "" {
			}
			err = cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				code = -1
			}
			if code != tt.code || out.String() != tt.out {
				t.Errorf("exit %d (%v), output %q; want %d, %q", code, err, out.String(), tt.code, tt.out)
			}
			if el := time.Since(start); el < tt.minTime {
				t.Errorf("exited %v after the signal, want at least %v", el, tt.minTime)
			}
		})
	}
}
