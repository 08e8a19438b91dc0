// Package synth builds synthetic Ethernet frames and seeded traffic mixes
// for the flow collector's tests, fuzz corpus and benchmark. It writes the
// bytes by hand, appending to a caller's buffer, so generating millions of
// packets allocates nothing per packet; tests cross-check its output against
// gopacket's own decoder.
package synth

import (
	"encoding/binary"
	"net/netip"
)

// Ext is an IPv6 extension header to put between the IPv6 header and the
// transport header.
type Ext struct {
	Type uint8 // 0 hop-by-hop, 43 routing, 60 destination, 44 fragment
	// Fragment header fields (Type 44).
	FragOffset uint16 // in 8-byte units
	More       bool
}

// Frame describes one packet. The zero value of optional fields means
// "absent": no VLAN tags, no IPv4 options, no extension headers.
type Frame struct {
	VLANs            []uint16 // outer first; the outer tag of two uses 802.1ad (0x88a8)
	Src, Dst         netip.Addr
	Proto            uint8 // 6, 17, 1, 58 or anything else (no transport header written)
	SrcPort, DstPort uint16
	TCPFlags         uint8
	ICMPType         uint8
	ICMPCode         uint8
	Payload          int // transport payload bytes on the wire
	IPv4Options      int // bytes of NOP options (multiple of 4, at most 40)
	FragOffset       uint16
	MoreFragments    bool
	Exts             []Ext
	Snaplen          int // capture at most this many bytes (0: all)
}

// Append writes the frame to buf and returns the extended buffer together
// with the frame's length on the wire (before snaplen truncation).
func Append(buf []byte, f *Frame) (out []byte, wireLen int) {
	start := len(buf)
	limit := -1
	if f.Snaplen > 0 {
		limit = start + f.Snaplen
	}
	buf = append(buf, 0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01) // dst, src MAC
	for i, v := range f.VLANs {
		tpid := uint16(0x8100)
		if i == 0 && len(f.VLANs) > 1 {
			tpid = 0x88a8
		}
		buf = binary.BigEndian.AppendUint16(buf, tpid)
		buf = binary.BigEndian.AppendUint16(buf, v&0x0fff)
	}
	l4len := transportLen(f)
	if f.Src.Is4() {
		buf = binary.BigEndian.AppendUint16(buf, 0x0800)
		ihl := 20 + f.IPv4Options
		ip := len(buf)
		ff := f.FragOffset & 0x1fff
		if f.MoreFragments {
			ff |= 0x2000
		}
		buf = append(buf, byte(0x40|ihl/4), 0)
		buf = binary.BigEndian.AppendUint16(buf, uint16(ihl+l4len))
		buf = append(buf, 0x12, 0x34)
		buf = binary.BigEndian.AppendUint16(buf, ff)
		buf = append(buf, 64, f.Proto, 0, 0)
		s, d := f.Src.As4(), f.Dst.As4()
		buf = append(buf, s[:]...)
		buf = append(buf, d[:]...)
		for range f.IPv4Options {
			buf = append(buf, 1) // NOP
		}
		binary.BigEndian.PutUint16(buf[ip+10:], checksum(buf[ip:ip+ihl]))
		if ff&0x1fff == 0 {
			buf = appendTransport(buf, f, limit)
		} else {
			buf = appendZeros(buf, l4len, limit)
		}
	} else {
		buf = binary.BigEndian.AppendUint16(buf, 0x86dd)
		extLen := 8 * len(f.Exts)
		buf = append(buf, 0x60, 0, 0, 0)
		buf = binary.BigEndian.AppendUint16(buf, uint16(extLen+l4len))
		next := f.Proto
		if len(f.Exts) > 0 {
			next = f.Exts[0].Type
		}
		buf = append(buf, next, 64)
		s, d := f.Src.As16(), f.Dst.As16()
		buf = append(buf, s[:]...)
		buf = append(buf, d[:]...)
		later := false
		for i, x := range f.Exts {
			nh := f.Proto
			if i+1 < len(f.Exts) {
				nh = f.Exts[i+1].Type
			}
			if x.Type == 44 {
				fo := x.FragOffset << 3
				if x.More {
					fo |= 1
				}
				buf = append(buf, nh, 0)
				buf = binary.BigEndian.AppendUint16(buf, fo)
				buf = append(buf, 0, 0, 0x56, 0x78)
				later = later || x.FragOffset != 0
				continue
			}
			if x.Type == 43 {
				buf = append(buf, nh, 0, 0, 0, 0, 0, 0, 0) // type 0, no segments left
				continue
			}
			buf = append(buf, nh, 0, 1, 4, 0, 0, 0, 0) // PadN option filling 6 bytes
		}
		if later {
			buf = appendZeros(buf, l4len, limit)
		} else {
			buf = appendTransport(buf, f, limit)
		}
	}
	wireLen = 14 + 4*len(f.VLANs) + transportLen(f)
	if f.Src.Is4() {
		wireLen += 20 + f.IPv4Options
	} else {
		wireLen += 40 + 8*len(f.Exts)
	}
	if limit >= 0 && len(buf) > limit {
		buf = buf[:limit]
	}
	return buf, wireLen
}

func transportLen(f *Frame) int {
	switch f.Proto {
	case 6:
		return 20 + f.Payload
	case 17, 1, 58:
		return 8 + f.Payload
	}
	return f.Payload
}

// appendZeros appends n zero bytes, or fewer when limit (>= 0) is reached:
// payload beyond the snaplen is never written.
func appendZeros(buf []byte, n, limit int) []byte {
	if limit >= 0 && len(buf)+n > limit {
		n = max(limit-len(buf), 0)
	}
	return append(buf, make([]byte, n)...)
}

func appendTransport(buf []byte, f *Frame, limit int) []byte {
	switch f.Proto {
	case 6:
		buf = binary.BigEndian.AppendUint16(buf, f.SrcPort)
		buf = binary.BigEndian.AppendUint16(buf, f.DstPort)
		buf = append(buf, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, f.TCPFlags, 0xff, 0xff, 0, 0, 0, 0)
	case 17:
		buf = binary.BigEndian.AppendUint16(buf, f.SrcPort)
		buf = binary.BigEndian.AppendUint16(buf, f.DstPort)
		buf = binary.BigEndian.AppendUint16(buf, uint16(8+f.Payload))
		buf = append(buf, 0, 0)
	case 1, 58:
		buf = append(buf, f.ICMPType, f.ICMPCode, 0, 0, 0, 1, 0, 1)
	}
	return appendZeros(buf, f.Payload, limit)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
