package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// streamLimit bounds each of the stream tests.
const streamLimit = 3 * time.Minute

// countingHash counts and hashes what is written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

func newCountingHash() *countingHash { return &countingHash{h: md5.New()} }

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *countingHash) String() string { return fmt.Sprintf("%d bytes, md5 %x", c.n, c.h.Sum(nil)) }

// runStreaming runs the CLI against d with stdin and stdout as given
// (nil: none), bounded by streamLimit; it returns the exit code and
// stderr.
func runStreaming(t *testing.T, d *Daemon, stdin io.Reader, stdout io.Writer, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.skiff, append([]string{"--socket", d.Socket}, args...)...)
	var errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("skiff %s did not end within %s (stderr %q)", strings.Join(args, " "), streamLimit, errb.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	}
	if err != nil {
		t.Fatalf("skiff %s: %v", strings.Join(args, " "), err)
	}
	return 0, errb.String()
}

// hostSeq is what seq 1 n prints.
func hostSeq(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.Bytes()
}

// TestStreamsStdinThroughCat: 20 MB through run -i cat come back byte
// for byte (the daemon reads the container's output while it writes its
// stdin; conmon used to block after about 112 KiB).
func TestStreamsStdinThroughCat(t *testing.T) {
	data := make([]byte, 20_000_000)
	rand.NewChaCha8([32]byte{1}).Read(data)
	want, got := newCountingHash(), newCountingHash()
	want.Write(data)
	if code, stderr := runStreaming(t, env.daemon, bytes.NewReader(data), got, "run", "-i", "--rm", "busybox", "cat"); code != 0 {
		t.Fatalf("run -i cat: exit %d: %s", code, stderr)
	}
	if got.String() != want.String() {
		t.Fatalf("run -i cat gave %s, want %s", got, want)
	}
}

// TestStreamsSlowStdinFastOutput: while stdin trickles in, the container
// writes 6.9 MB; all of it and then the lines read come out in order.
func TestStreamsSlowStdinFastOutput(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		for _, l := range []string{"one", "two", "three", "four", "five"} {
			time.Sleep(200 * time.Millisecond)
			io.WriteString(pw, l+"\n")
		}
		pw.Close()
	}()
	var out bytes.Buffer
	code, stderr := runStreaming(t, env.daemon, pr, &out, "run", "-i", "--rm", "busybox", "sh", "-c", `seq 1 1000000; while read l; do echo "in:$l"; done; echo end`)
	want := append(hostSeq(1000000), "in:one\nin:two\nin:three\nin:four\nin:five\nend\n"...)
	if code != 0 || !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("exit %d, %d bytes of output (want %d), ends %q; stderr %q", code, out.Len(), len(want), tail(out.Bytes(), 60), stderr)
	}
}

// TestStreamsRunToPipe: 100 MB of output of a foreground run reach a pipe
// whole: the length and md5 computed inside the container match those of
// what came out (attached output used to be read back from the log,
// which rotates at 10 MiB, and lost the middle).
func TestStreamsRunToPipe(t *testing.T) {
	got := newCountingHash()
	code, stderr := runStreaming(t, env.daemon, nil, got, "run", "--rm", "busybox", "sh", "-c",
		`{ head -c 100000000 /dev/urandom | tee /dev/fd/3 | md5sum >&2; } 3>&1`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	inside := strings.Fields(stderr)
	if got.n != 100_000_000 || len(inside) == 0 || fmt.Sprintf("%x", got.h.Sum(nil)) != inside[0] {
		t.Fatalf("got %s, want 100000000 bytes with the md5 the container computed (stderr %q)", got, stderr)
	}
	// And as lines: seq's 6.9 MB, in order.
	var out bytes.Buffer
	if code, stderr := runStreaming(t, env.daemon, nil, &out, "run", "--rm", "busybox", "seq", "1", "1000000"); code != 0 || !bytes.Equal(out.Bytes(), hostSeq(1000000)) {
		t.Fatalf("seq 1 1000000: exit %d, %d bytes, ends %q; stderr %q", code, out.Len(), tail(out.Bytes(), 40), stderr)
	}
}

// TestStreamsTerminalOutput: 20 MB out of run -it, driven from a
// terminal, arrive whole (with the container terminal's \r\n).
func TestStreamsTerminalOutput(t *testing.T) {
	const n = 2_600_000 // about 19.7 MB of seq output
	s := startOnTerminal(t, env.daemon, 24, 80, "run", "-it", "--rm", "busybox", "seq", "1", fmt.Sprint(n))
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		<-s.read
		if err != nil {
			t.Fatalf("run -it seq: %v", err)
		}
	case <-time.After(streamLimit):
		s.cmd.Process.Kill()
		s.mu.Lock()
		got := s.out.Len()
		s.mu.Unlock()
		t.Fatalf("run -it seq did not end within %s; %d bytes shown", streamLimit, got)
	}
	s.mu.Lock()
	out := bytes.ReplaceAll(s.out.Bytes(), []byte("\r\n"), []byte("\n"))
	s.mu.Unlock()
	if want := hostSeq(n); !bytes.Equal(out, want) {
		t.Fatalf("run -it seq: %d bytes (want %d), ends %q", len(out), len(want), tail(out, 40))
	}
}

// TestStreamsLogsFollowAcrossRotations: logs -f of a container writing
// short lines in bursts, across three rotations of its 10 MiB log, gets
// every line in order: a follower that keeps within the retention loses
// nothing when files are rotated away.
func TestStreamsLogsFollowAcrossRotations(t *testing.T) {
	d := env.daemon
	const bursts, per = 30, 20000 // 600,000 lines, about 31 MiB of log
	must(t, d, "run", "-d", "--name", "rotating", "busybox", "sh", "-c",
		fmt.Sprintf(`i=0; while [ $i -lt %d ]; do seq $((i*%d+1)) $((i*%d+%d)); i=$((i+1)); sleep 0.5; done`, bursts, per, per, per))
	defer d.Run("", "rm", "-f", "rotating")
	var out bytes.Buffer
	if code, stderr := runStreaming(t, d, nil, &out, "logs", "-f", "rotating"); code != 0 {
		t.Fatalf("logs -f: exit %d: %s", code, stderr)
	}
	want := hostSeq(bursts * per)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("logs -f: %d bytes (want %d): %s", out.Len(), len(want), firstGap(out.Bytes()))
	}
	if r := d.Run("", "inspect", "rotating"); !strings.Contains(r.Stdout, `"exited"`) {
		t.Fatalf("logs -f returned before the container exited: %s", r.Stdout)
	}
}

// TestStreamsLogsEveryByte: logs gives back bytes that are not UTF-8
// as they were written (the API used to carry lines as JSON strings).
func TestStreamsLogsEveryByte(t *testing.T) {
	d := env.daemon
	var data, format strings.Builder
	for range 4 {
		for b := range 256 {
			data.WriteByte(byte(b))
			fmt.Fprintf(&format, `\%03o`, b)
		}
	}
	data.WriteString("caf\xe9\n")
	format.WriteString(`caf\351\n`)
	must(t, d, "run", "--name", "allbytes", "busybox", "printf", format.String())
	defer d.Run("", "rm", "-f", "allbytes")
	for _, args := range [][]string{{"logs", "allbytes"}, {"logs", "-f", "allbytes"}} {
		var out bytes.Buffer
		if code, stderr := runStreaming(t, d, nil, &out, args...); code != 0 {
			t.Fatalf("%s: exit %d: %s", args, code, stderr)
		}
		if out.String() != data.String() {
			t.Fatalf("%s: %d bytes, want %d:\n%q", args, out.Len(), data.Len(), out.String())
		}
	}
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte { return b[max(0, len(b)-n):] }

// firstGap describes where seq output b first departs from 1, 2, 3...
func firstGap(b []byte) string {
	want := 1
	for line := range strings.Lines(string(b)) {
		if line != fmt.Sprintf("%d\n", want) {
			return fmt.Sprintf("line %d is %q", want, line)
		}
		want++
	}
	return fmt.Sprintf("ends after %d lines", want-1)
}

// TestStreamsStalledClient: a client that stops reading holds the
// container back (as a pipe would), but cannot keep rm -f from removing
// it; before, conmon stayed blocked on the attach socket and rm -f gave
// up after 30 s.
func TestStreamsStalledClient(t *testing.T) {
	d := env.daemon
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	outR, outW, err := os.Pipe() // never read
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(env.skiff, "--socket", d.Socket, "run", "-i", "--name", "stalled", "busybox", "yes", "0123456789")
	cmd.Stdin, cmd.Stdout = inR, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	defer func() {
		outR.Close()
		cmd.Process.Kill()
		cmd.Wait()
		d.Run("", "rm", "-f", "stalled")
	}()
	eventually(t, 30*time.Second, "the container to run", func() bool {
		return strings.Contains(d.Run("", "inspect", "stalled").Stdout, `"running"`)
	})
	time.Sleep(2 * time.Second) // every buffer on the way fills up
	start := time.Now()
	if r := d.Run("", "rm", "-f", "stalled"); r.Code != 0 {
		t.Fatalf("rm -f of a container whose client stalled: %s", r)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("rm -f took %s", took)
	}
}
