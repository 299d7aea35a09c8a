package daemon

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/network/dns"
)

// The environment through which a daemon hands its sockets to the one
// taking over (see upgrade.go): envListenFDs names the files passed from
// fd 3 on, in order, separated by commas.
const (
	envListenFDs     = "SKIFF_LISTEN_FDS"
	envListenSystemd = "SKIFF_LISTEN_SYSTEMD" // "1": the API socket belongs to systemd
	envRouted        = "SKIFF_ROUTED"         // endpoint IDs the old daemon routed to
)

// Socket names. DNS sockets are named dnsUDP or dnsTCP + "@" + address.
const (
	sockAPI        = "api"
	sockIngress    = "ingress"
	sockIngressTLS = "ingress-tls"
	sockMetrics    = "metrics"
	sockAPITCP     = "api-tcp" // the API over TCP (--api-addr)
	sockDNSUDP     = "dns-udp"
	sockDNSTCP     = "dns-tcp"
	sockHandover   = "handover" // the pipe a new daemon reports through
)

// sockets holds the daemon's listening sockets as files, by name, for the
// whole life of the process: servers listen on copies, so a server can
// stop accepting while the socket, and the connections queued on it,
// stay for the daemon that takes over.
type sockets struct {
	files map[string]*os.File
	// systemd is true when systemd made the sockets (socket activation):
	// the API socket's file is then systemd's to remove, not ours.
	systemd bool
	// dns are the DNS servers' sockets handed over, by address.
	dns map[string]dns.Sockets
	// handover is the pipe to the daemon this one takes over from.
	handover *os.File
	// routed are the endpoints that daemon routed to.
	routed []string
}

// inheritSockets collects the sockets this process was started with:
// by a daemon handing over (SKIFF_LISTEN_FDS), or by systemd's socket
// activation (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES). It clears those
// variables and marks the files close-on-exec, so containers and other
// children never hold them.
func inheritSockets() (*sockets, error) {
	s := &sockets{files: map[string]*os.File{}, dns: map[string]dns.Sockets{}}
	if names := os.Getenv(envListenFDs); names != "" {
		s.systemd = os.Getenv(envListenSystemd) == "1"
		if r := os.Getenv(envRouted); r != "" {
			s.routed = strings.Split(r, ",")
		}
		for _, v := range []string{envListenFDs, envListenSystemd, envRouted} {
			os.Unsetenv(v)
		}
		for i, name := range strings.Split(names, ",") {
			if err := s.add(name, 3+i); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	pid := os.Getenv("LISTEN_PID")
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	for _, v := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	if err != nil || n <= 0 || pid != strconv.Itoa(os.Getpid()) {
		return s, nil
	}
	s.systemd = true
	for i := range n {
		fd := 3 + i
		name := ""
		if i < len(names) {
			name = names[i]
		}
		if !slices.Contains([]string{sockAPI, sockIngress, sockIngressTLS, sockMetrics, sockAPITCP, sockDocker}, name) {
			// Unnamed (FileDescriptorName= unset): the unix socket is
			// the API, the first TCP socket the ingress.
			if name = guessName(fd); s.files[name] != nil {
				return nil, fmt.Errorf("systemd passed more sockets than the API and the ingress: name them with FileDescriptorName=api, ingress, ingress-tls, metrics or docker")
			}
		}
		if err := s.add(name, fd); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// guessName names an unnamed socket from systemd by its family.
func guessName(fd int) string {
	sa, err := unix.Getsockname(fd)
	if _, ok := sa.(*unix.SockaddrUnix); ok && err == nil {
		return sockAPI
	}
	return sockIngress
}

// add takes the file at fd under name.
func (s *sockets) add(name string, fd int) error {
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return fmt.Errorf("inherited socket %q: fd %d is not open", name, fd)
	}
	if name == sockHandover {
		s.handover = f
		return nil
	}
	if kind, addr, ok := strings.Cut(name, "@"); ok && (kind == sockDNSUDP || kind == sockDNSTCP) {
		ds := s.dns[addr]
		if kind == sockDNSUDP {
			ds.UDP = f
		} else {
			ds.TCP = f
		}
		s.dns[addr] = ds
		return nil
	}
	if s.files[name] != nil {
		return fmt.Errorf("inherited socket %q twice", name)
	}
	s.files[name] = f
	return nil
}

// has reports whether the socket named name was inherited or opened.
func (s *sockets) has(name string) bool { return s.files[name] != nil }

// listener returns a listener on the socket named name: a copy of the one
// inherited or opened before, or a new one from open, kept to hand over.
func (s *sockets) listener(name string, open func() (net.Listener, error)) (net.Listener, error) {
	if f := s.files[name]; f != nil {
		l, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("use the %s socket passed to the daemon: %w", name, err)
		}
		return l, nil
	}
	l, err := open()
	if err != nil {
		return nil, err
	}
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // the socket outlives this listener
	}
	f, err := l.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("keep the %s socket: %w", name, err)
	}
	s.files[name] = f
	return l, nil
}

// handOver lists the files to pass to the next daemon and their names:
// the listening sockets, then dnsSocks.
func (s *sockets) handOver(dnsSocks map[string]dns.Sockets) (files []*os.File, names []string) {
	for _, name := range []string{sockAPI, sockIngress, sockIngressTLS, sockMetrics, sockAPITCP, sockDocker} {
		if f := s.files[name]; f != nil {
			files, names = append(files, f), append(names, name)
		}
	}
	addrs := make([]string, 0, len(dnsSocks))
	for a := range dnsSocks {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range addrs {
		ds := dnsSocks[a]
		files = append(files, ds.UDP, ds.TCP)
		names = append(names, sockDNSUDP+"@"+a, sockDNSTCP+"@"+a)
	}
	return files, names
}

// close closes every file.
func (s *sockets) close() {
	for _, f := range s.files {
		f.Close()
	}
	for _, ds := range s.dns {
		ds.Close()
	}
	if s.handover != nil {
		s.handover.Close()
	}
}
