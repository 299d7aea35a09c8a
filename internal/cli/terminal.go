package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

// watchTerminalSize calls resize with this terminal's size each time the
// window changes (SIGWINCH), until stop.
func (g *globals) watchTerminalSize(resize func(api.ConsoleSize)) (stop func()) {
	out, ok := g.stdout.(*os.File)
	if !ok {
		return func() {}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
					resize(api.ConsoleSize{Height: uint(min(h, 1000)), Width: uint(min(w, 1000))})
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// useTerminal prepares this terminal for a process with a terminal in
// the container: size is this one's (nil if stdout is not a terminal),
// and with interactive it is put in raw mode so every key goes to the
// process; restore undoes that. With interactive, stdin must be a
// terminal.
func (g *globals) useTerminal(interactive bool) (size *api.ConsoleSize, restore func(), err error) {
	restore = func() {}
	if out, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
		if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
			// conmon takes terminals up to 1000×1000.
			size = &api.ConsoleSize{Height: uint(min(h, 1000)), Width: uint(min(w, 1000))}
		}
	}
	if !interactive {
		return size, restore, nil
	}
	in, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, nil, errors.New("-t with -i needs a terminal, and the input is not one: drop -t to pipe input in")
	}
	state, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, nil, err
	}
	return size, func() { term.Restore(int(in.Fd()), state) }, nil
}

// followTerminal makes this terminal the one of container id, created
// with a terminal: raw mode with interactive (see useTerminal), and the
// container's terminal resized with the window — at once if running.
// restore undoes it.
func (g *globals) followTerminal(ctx context.Context, id string, interactive, running bool) (restore func(), err error) {
	size, restoreMode, err := g.useTerminal(interactive)
	if err != nil {
		return nil, err
	}
	cl := g.client()
	resize := func(size api.ConsoleSize) { cl.Resize(context.WithoutCancel(ctx), id, size) }
	if running && size != nil {
		resize(*size)
	}
	stop := g.watchTerminalSize(resize)
	return func() { stop(); restoreMode() }, nil
}

// saidDetached tells the user how to come back after ^P ^Q (the
// terminal may still be raw: hence \r\n).
func (g *globals) saidDetached(name string) {
	fmt.Fprintf(g.stderr, "\r\ndetached from %s; the container goes on (skiff attach %s to come back)\r\n", name, name)
}

// detachKeys is the key sequence that detaches from a container's
// terminal, as docker's default: ^P ^Q.
var detachKeys = []byte{0x10, 0x11}

// detachReader passes keys through until the detach sequence, then
// returns client.ErrDetached (keys after it are dropped). A key that
// starts the sequence is held until the next one says whether it
// completes it.
type detachReader struct {
	r        io.Reader
	matched  int    // keys of detachKeys held
	pending  []byte // keys to pass on
	detached bool
	err      error
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 && !d.detached && d.err == nil {
		in := make([]byte, max(len(p), 1))
		n, err := d.r.Read(in)
		for _, b := range in[:n] {
			if b == detachKeys[d.matched] {
				d.matched++
				if d.detached = d.matched == len(detachKeys); d.detached {
					break
				}
				continue
			}
			d.pending = append(d.pending, detachKeys[:d.matched]...) // not the sequence after all
			d.matched = 0
			if b == detachKeys[0] {
				d.matched = 1
			} else {
				d.pending = append(d.pending, b)
			}
		}
		if err != nil && !d.detached {
			d.pending = append(d.pending, detachKeys[:d.matched]...)
			d.matched, d.err = 0, err
		}
	}
	if len(d.pending) > 0 {
		n := copy(p, d.pending)
		d.pending = d.pending[n:]
		return n, nil
	}
	if d.detached {
		return 0, client.ErrDetached
	}
	return 0, d.err
}
