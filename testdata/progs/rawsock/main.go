// Command rawsock tries a TCP handshake the kernel would refuse to make:
// it writes Ethernet frames itself, on a packet socket, to the default
// gateway's MAC address, addressed to a host address such as 127.0.0.1.
// It proves what a container with CAP_NET_RAW can reach through its
// bridge, whatever the kernel's routing would let a socket do.
//
//	rawsock [-i eth0] [-timeout 3s] [-data TEXT] HOST:PORT
//
// HOST may be IPv4 or IPv6 (like [::1]). rawsock sends a SYN (again
// every second) until a SYN-ACK from HOST:PORT comes back or the timeout
// passes. On a SYN-ACK it completes the handshake with an ACK, sends
// TEXT (default "rawsock\n") in one segment and prints
// "handshake completed with HOST:PORT", exit 0. Otherwise it prints
// "no SYN-ACK from HOST:PORT", exit 1. Errors exit 2. It needs
// CAP_NET_RAW.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	iface := flag.String("i", "eth0", "interface to send on")
	timeout := flag.Duration("timeout", 3*time.Second, "how long to wait for a SYN-ACK")
	data := flag.String("data", "rawsock\n", "what to send once connected")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: rawsock [-i eth0] [-timeout 3s] [-data TEXT] HOST:PORT")
		os.Exit(2)
	}
	target, err := netip.ParseAddrPort(flag.Arg(0))
	if err != nil {
		fail("target %q: %v", flag.Arg(0), err)
	}
	ok, err := handshake(*iface, target, *timeout, []byte(*data))
	if err != nil {
		fail("%v", err)
	}
	if !ok {
		fmt.Printf("no SYN-ACK from %s\n", target)
		os.Exit(1)
	}
	fmt.Printf("handshake completed with %s\n", target)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "rawsock: "+format+"\n", args...)
	os.Exit(2)
}

// handshake does the TCP handshake with target by hand on iface, through
// the default gateway, and sends data once it is done.
func handshake(iface string, target netip.AddrPort, timeout time.Duration, data []byte) (bool, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return false, err
	}
	src, err := sourceAddr(ifc, target.Addr().Is6())
	if err != nil {
		return false, err
	}
	gw, err := defaultGateway(iface)
	if err != nil {
		return false, err
	}
	gwMAC, err := neighbour(gw)
	if err != nil {
		return false, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return false, fmt.Errorf("open a packet socket (CAP_NET_RAW is needed): %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return false, fmt.Errorf("bind the packet socket to %s: %w", iface, err)
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return false, err
	}
	to := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
	copy(to.Addr[:], gwMAC)
	c := conn{
		eth: ethHeader{dst: gwMAC, src: ifc.HardwareAddr},
		src: netip.AddrPortFrom(src, uint16(20000+rand.IntN(40000))),
		dst: target,
		seq: rand.Uint32(),
	}
	send := func(frame []byte) error { return unix.Sendto(fd, frame, 0, to) }
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	var lastSYN time.Time
	for time.Now().Before(deadline) {
		if time.Since(lastSYN) >= time.Second {
			if err := send(c.frame(flagSYN, c.seq, 0, nil)); err != nil {
				return false, fmt.Errorf("send SYN: %w", err)
			}
			lastSYN = time.Now()
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("receive: %w", err)
		}
		peerSeq, ok := c.synAck(buf[:n])
		if !ok {
			continue
		}
		if err := send(c.frame(flagACK, c.seq+1, peerSeq+1, nil)); err != nil {
			return false, fmt.Errorf("send ACK: %w", err)
		}
		if err := send(c.frame(flagACK|flagPSH, c.seq+1, peerSeq+1, data)); err != nil {
			return false, fmt.Errorf("send data: %w", err)
		}
		return true, nil
	}
	return false, nil
}

// sourceAddr picks the interface's address of the target's family (for
// IPv6 any address will do: the answer, if any, is read off the wire).
func sourceAddr(ifc *net.Interface, v6 bool) (netip.Addr, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() == v6 {
			return p.Addr(), nil
		}
	}
	if v6 {
		return netip.MustParseAddr("fe80::1"), nil
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address", ifc.Name)
}

// defaultGateway reads the IPv4 default route through iface from
// /proc/net/route.
func defaultGateway(iface string) (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if gw, ok := parseRoute(sc.Text(), iface); ok {
			return gw, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no default route through %s", iface)
}

// parseRoute returns the gateway of a /proc/net/route line that is a
// default route through iface.
func parseRoute(line, iface string) (netip.Addr, bool) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != iface || f[1] != "00000000" {
		return netip.Addr{}, false
	}
	v, err := strconv.ParseUint(f[2], 16, 32)
	if err != nil || v == 0 {
		return netip.Addr{}, false
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), true
}

// neighbour returns the MAC address of gw, making the kernel resolve it
// first with a datagram to its discard port.
func neighbour(gw netip.Addr) (net.HardwareAddr, error) {
	if c, err := net.Dial("udp4", netip.AddrPortFrom(gw, 9).String()); err == nil {
		c.Write([]byte{0})
		c.Close()
	}
	for range 100 {
		data, err := os.ReadFile("/proc/net/arp")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line) // IP type flags MAC mask device
			if len(f) >= 4 && f[0] == gw.String() && f[2] == "0x2" {
				return net.ParseMAC(f[3])
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("the gateway %s did not answer ARP", gw)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
