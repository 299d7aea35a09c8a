package main

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// TCP flags.
const (
	flagSYN = 0x02
	flagPSH = 0x08
	flagACK = 0x10
)

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	protoTCP  = 6
)

type ethHeader struct {
	dst, src net.HardwareAddr
}

// conn is one hand-made TCP connection from src to dst.
type conn struct {
	eth      ethHeader
	src, dst netip.AddrPort
	seq      uint32 // initial sequence number
}

// frame builds an Ethernet frame holding one TCP segment of c.
func (c conn) frame(flags byte, seq, ack uint32, payload []byte) []byte {
	tcp := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(tcp[0:], c.src.Port())
	binary.BigEndian.PutUint16(tcp[2:], c.dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[20:], payload)
	binary.BigEndian.PutUint16(tcp[16:], checksum(pseudoHeader(c.src.Addr(), c.dst.Addr(), len(tcp)), tcp))

	var ip []byte
	etherType := uint16(etherIPv4)
	if c.dst.Addr().Is4() {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8] = 64
		ip[9] = protoTCP
		s, d := c.src.Addr().As4(), c.dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], checksum(nil, ip))
	} else {
		etherType = etherIPv6
		ip = make([]byte, 40)
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		ip[6] = protoTCP
		ip[7] = 64
		s, d := c.src.Addr().As16(), c.dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	f := make([]byte, 0, 14+len(ip)+len(tcp))
	f = append(f, c.eth.dst...)
	f = append(f, c.eth.src...)
	f = binary.BigEndian.AppendUint16(f, etherType)
	f = append(f, ip...)
	return append(f, tcp...)
}

// synAck reports whether frame is dst's SYN-ACK to c's SYN, and returns
// the peer's sequence number.
func (c conn) synAck(frame []byte) (uint32, bool) {
	if len(frame) < 14 {
		return 0, false
	}
	var src netip.Addr
	var tcp []byte
	switch et, ip := binary.BigEndian.Uint16(frame[12:]), frame[14:]; {
	case et == etherIPv4 && len(ip) >= 20 && ip[0]>>4 == 4 && ip[9] == protoTCP:
		hl := int(ip[0]&0x0f) * 4
		if len(ip) < hl+20 {
			return 0, false
		}
		src = netip.AddrFrom4([4]byte(ip[12:16]))
		tcp = ip[hl:]
	case et == etherIPv6 && len(ip) >= 60 && ip[6] == protoTCP:
		src = netip.AddrFrom16([16]byte(ip[8:24]))
		tcp = ip[40:]
	default:
		return 0, false
	}
	if src != c.dst.Addr() ||
		binary.BigEndian.Uint16(tcp[0:]) != c.dst.Port() ||
		binary.BigEndian.Uint16(tcp[2:]) != c.src.Port() ||
		tcp[13]&(flagSYN|flagACK) != flagSYN|flagACK ||
		binary.BigEndian.Uint32(tcp[8:]) != c.seq+1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(tcp[4:]), true
}

// pseudoHeader is what the TCP checksum covers besides the segment.
func pseudoHeader(src, dst netip.Addr, length int) []byte {
	var p []byte
	p = append(p, src.AsSlice()...)
	p = append(p, dst.AsSlice()...)
	if src.Is4() {
		return append(p, 0, protoTCP, byte(length>>8), byte(length))
	}
	return append(p, 0, 0, byte(length>>8), byte(length), 0, 0, 0, protoTCP)
}

// checksum is the Internet checksum (RFC 1071) of a then b; a has an
// even length.
func checksum(a, b []byte) uint16 {
	var sum uint32
	for _, d := range [][]byte{a, b} {
		for i := 0; i+1 < len(d); i += 2 {
			sum += uint32(d[i])<<8 | uint32(d[i+1])
		}
		if len(d)%2 == 1 {
			sum += uint32(d[len(d)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
