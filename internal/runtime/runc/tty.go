package runc

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/runtime"
)

// ttyDrain bounds the wait for a terminal's last output once the runtime
// has exited (a process the command left behind may hold the terminal).
const ttyDrain = 2 * time.Second

// runOnTerminal runs cmd, a "<runtime> exec" of a process with a
// terminal, on a pseudo-terminal of its own: the runtime takes it as its
// console, puts it in raw mode and relays between it and the terminal it
// makes in the container, sizing that one from it. The daemon reads and
// writes the other end: stdio.Stdout gets all output, stdio.Stdin (if
// set) is typed in. size, if set, is the terminal's initial size, and
// stdio.Resize its later ones.
func runOnTerminal(cmd *exec.Cmd, size *specs.Box, stdio runtime.ExecIO) error {
	master, slave, err := openPty()
	if err != nil {
		return errdefs.Unavailable("open a pseudo-terminal: %w", err)
	}
	defer master.Close()
	if size != nil && size.Height > 0 && size.Width > 0 {
		if err := setWinsize(master, size); err != nil {
			slave.Close()
			return errdefs.Unavailable("size the pseudo-terminal: %w", err)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// Its own session with the terminal as controlling terminal, like a
	// process started from a shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		return err
	}
	out := make(chan struct{})
	go func() {
		// Ends with EIO once the runtime, the last holder of the other
		// end, has exited.
		io.Copy(stdio.Stdout, master)
		close(out)
	}()
	if stdio.Stdin != nil {
		go io.Copy(master, stdio.Stdin)
	}
	exited := make(chan struct{})
	go func() {
		for {
			select {
			case size := <-stdio.Resize:
				// The runtime sizes the container's terminal from its own
				// on SIGWINCH.
				if size.Height > 0 && size.Width > 0 && setWinsize(master, &size) == nil {
					cmd.Process.Signal(unix.SIGWINCH)
				}
			case <-exited:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(exited)
	select {
	case <-out:
	case <-time.After(ttyDrain):
	}
	return err
}

// openPty opens a new pseudo-terminal pair.
func openPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var n uint32
	err = control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		var err error
		n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN)
		return err
	})
	if err == nil {
		slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// setWinsize sets a terminal's size.
func setWinsize(f *os.File, size *specs.Box) error {
	ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
	return control(f, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
}

// control runs fn on f's descriptor without switching f to blocking
// mode (as Fd would), so closing f still ends a read in progress.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
