package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

func TestFrames(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	for _, tc := range []struct{ name, src, dst string }{
		{"ipv4", "10.89.0.2:40000", "127.0.0.1:8080"},
		{"ipv6", "[fe80::2]:40000", "[::1]:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conn{
				eth: ethHeader{dst: mac("02:73:0a:59:00:01"), src: mac("02:73:0a:59:00:02")},
				src: netip.MustParseAddrPort(tc.src), dst: netip.MustParseAddrPort(tc.dst), seq: 1000,
			}
			syn := c.frame(flagSYN, c.seq, 0, nil)
			if string(syn[0:6]) != string(c.eth.dst) || string(syn[6:12]) != string(c.eth.src) {
				t.Fatalf("Ethernet addresses %x", syn[:12])
			}
			ipLen := 20
			if c.dst.Addr().Is6() {
				ipLen = 40
			}
			ip, tcp := syn[14:14+ipLen], syn[14+ipLen:]
			if c.dst.Addr().Is4() && checksum(nil, ip) != 0 {
				t.Error("IPv4 header checksum does not verify")
			}
			if checksum(pseudoHeader(c.src.Addr(), c.dst.Addr(), len(tcp)), tcp) != 0 {
				t.Error("TCP checksum does not verify")
			}
			if tcp[13] != flagSYN || binary.BigEndian.Uint32(tcp[4:]) != 1000 || binary.BigEndian.Uint16(tcp[2:]) != 8080 {
				t.Errorf("SYN segment %x", tcp)
			}
			// The peer's answer, made the same way.
			peer := conn{eth: ethHeader{dst: c.eth.src, src: c.eth.dst}, src: c.dst, dst: c.src}
			if seq, ok := c.synAck(peer.frame(flagSYN|flagACK, 5000, c.seq+1, nil)); !ok || seq != 5000 {
				t.Errorf("SYN-ACK not recognised: %d, %v", seq, ok)
			}
			for name, f := range map[string][]byte{
				"wrong ack": peer.frame(flagSYN|flagACK, 5000, c.seq+2, nil),
				"RST":       peer.frame(flagACK|0x04, 5000, c.seq+1, nil),
				"own SYN":   syn,
				"truncated": syn[:20],
			} {
				if _, ok := c.synAck(f); ok {
					t.Errorf("%s taken for a SYN-ACK", name)
				}
			}
		})
	}
}

func TestParseRoute(t *testing.T) {
	gw, ok := parseRoute("eth0\t00000000\t0100590A\t0003\t0\t0\t0\t00000000\t0\t0\t0", "eth0")
	if !ok || gw != netip.MustParseAddr("10.89.0.1") {
		t.Fatalf("gateway %v, %v", gw, ok)
	}
	if _, ok := parseRoute("eth0\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0", "eth0"); ok {
		t.Fatal("a subnet route taken for the default route")
	}
}
