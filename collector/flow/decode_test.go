package flow

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

var (
	v4a = netip.MustParseAddr("198.18.0.1")
	v4b = netip.MustParseAddr("198.18.0.2")
	v6a = netip.MustParseAddr("fd00::1")
	v6b = netip.MustParseAddr("fd00::2")
)

func frame(f synth.Frame) []byte {
	b, _ := synth.Append(nil, &f)
	return b
}

func addr16(a netip.Addr) [16]byte {
	if a.Is4() {
		var b [16]byte
		v := a.As4()
		copy(b[:], v[:])
		return b
	}
	return a.As16()
}

type decodeCase struct {
	name string
	f    synth.Frame
	fast bool // expected to take the fast path
	want Meta // Src/Dst filled from f when zero
}

func decodeCases() []decodeCase {
	return []decodeCase{
		{name: "ipv4 tcp syn", fast: true,
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 6, SrcPort: 40000, DstPort: 80, TCPFlags: 0x02},
			want: Meta{SrcPort: 40000, DstPort: 80, Proto: 6, Family: 4, TCPFlags: 0x02}},
		{name: "dot1q ipv4 udp", fast: true,
			f:    synth.Frame{VLANs: []uint16{42}, Src: v4a, Dst: v4b, Proto: 17, SrcPort: 5353, DstPort: 53, Payload: 30},
			want: Meta{SrcPort: 5353, DstPort: 53, Proto: 17, Family: 4, VLAN: 42}},
		{name: "qinq ipv6 tcp keeps outer vlan", fast: true,
			f:    synth.Frame{VLANs: []uint16{100, 7}, Src: v6a, Dst: v6b, Proto: 6, SrcPort: 1234, DstPort: 443, TCPFlags: 0x18, Payload: 100},
			want: Meta{SrcPort: 1234, DstPort: 443, Proto: 6, Family: 6, VLAN: 100, TCPFlags: 0x18}},
		{name: "ipv4 snaplen truncated payload", fast: true,
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 6, SrcPort: 1, DstPort: 2, TCPFlags: 0x10, Payload: 1400, Snaplen: 96},
			want: Meta{SrcPort: 1, DstPort: 2, Proto: 6, Family: 4, TCPFlags: 0x10}},
		{name: "ipv4 first fragment carries ports", fast: true,
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 17, SrcPort: 7, DstPort: 9, MoreFragments: true, Payload: 1000},
			want: Meta{SrcPort: 7, DstPort: 9, Proto: 17, Family: 4, Fragment: FirstFragment}},
		{name: "ipv4 later fragment has no ports", fast: true,
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 17, SrcPort: 7, DstPort: 9, FragOffset: 185, Payload: 500},
			want: Meta{Proto: 17, Family: 4, Fragment: LaterFragment}},
		{name: "ipv4 icmp echo request", fast: true,
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 1, ICMPType: 8},
			want: Meta{SrcPort: 8 << 8, DstPort: 8 << 8, Proto: 1, Family: 4}},
		{name: "ipv4 icmp echo reply folds onto request", fast: true,
			f:    synth.Frame{Src: v4b, Dst: v4a, Proto: 1, ICMPType: 0},
			want: Meta{SrcPort: 8 << 8, DstPort: 8 << 8, Proto: 1, Family: 4}},
		{name: "ipv4 icmp port unreachable", fast: true,
			f:    synth.Frame{Src: v4b, Dst: v4a, Proto: 1, ICMPType: 3, ICMPCode: 3, Payload: 28},
			want: Meta{SrcPort: 3<<8 | 3, DstPort: 3<<8 | 3, Proto: 1, Family: 4}},
		{name: "ipv6 icmp echo reply", fast: true,
			f:    synth.Frame{Src: v6b, Dst: v6a, Proto: 58, ICMPType: 129},
			want: Meta{SrcPort: 128 << 8, DstPort: 128 << 8, Proto: 58, Family: 6}},
		{name: "icmpv6 inside ipv4 goes by protocol number", fast: true,
			f:    synth.Frame{Src: v4b, Dst: v4a, Proto: 58, ICMPType: 129, ICMPCode: 1},
			want: Meta{SrcPort: 128<<8 | 1, DstPort: 128<<8 | 1, Proto: 58, Family: 4}},
		{name: "ipv4 options",
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 6, SrcPort: 3, DstPort: 4, TCPFlags: 0x11, IPv4Options: 8},
			want: Meta{SrcPort: 3, DstPort: 4, Proto: 6, Family: 4, TCPFlags: 0x11}},
		{name: "ipv6 hop-by-hop and destination options",
			f:    synth.Frame{Src: v6a, Dst: v6b, Proto: 17, SrcPort: 500, DstPort: 4500, Exts: []synth.Ext{{Type: 0}, {Type: 60}}},
			want: Meta{SrcPort: 500, DstPort: 4500, Proto: 17, Family: 6}},
		{name: "ipv6 routing header then tcp",
			f:    synth.Frame{Src: v6a, Dst: v6b, Proto: 6, SrcPort: 5, DstPort: 6, TCPFlags: 0x04, Exts: []synth.Ext{{Type: 43}}},
			want: Meta{SrcPort: 5, DstPort: 6, Proto: 6, Family: 6, TCPFlags: 0x04}},
		{name: "ipv6 first fragment carries ports",
			f:    synth.Frame{Src: v6a, Dst: v6b, Proto: 17, SrcPort: 11, DstPort: 12, Payload: 1200, Exts: []synth.Ext{{Type: 44, More: true}}},
			want: Meta{SrcPort: 11, DstPort: 12, Proto: 17, Family: 6, Fragment: FirstFragment}},
		{name: "ipv6 later fragment behind destination options",
			f:    synth.Frame{Src: v6a, Dst: v6b, Proto: 17, SrcPort: 11, DstPort: 12, Payload: 300, Exts: []synth.Ext{{Type: 60}, {Type: 44, FragOffset: 151}}},
			want: Meta{Proto: 17, Family: 6, Fragment: LaterFragment}},
		{name: "ipv4 gre has no ports",
			f:    synth.Frame{Src: v4a, Dst: v4b, Proto: 47, Payload: 24},
			want: Meta{Proto: 47, Family: 4}},
	}
}

func TestDecode(t *testing.T) {
	d := NewDecoder(layers.LinkTypeEthernet)
	for _, c := range decodeCases() {
		t.Run(c.name, func(t *testing.T) {
			data := frame(c.f)
			want := c.want
			want.Src, want.Dst = addr16(c.f.Src), addr16(c.f.Dst)
			var m Meta
			before := d.Stats
			if !d.Decode(data, &m) {
				t.Fatalf("Decode = false, stats %+v", d.Stats)
			}
			if m != want {
				t.Fatalf("Decode:\n got %+v\nwant %+v", m, want)
			}
			if gotFast := d.Stats.Fast > before.Fast; gotFast != c.fast {
				t.Errorf("fast path used = %v, want %v", gotFast, c.fast)
			}
			var g Meta
			if r := d.DecodeGeneral(data, &g); r != ReasonNone || g != want {
				t.Errorf("DecodeGeneral = %v %+v, want %+v", r, g, want)
			}
		})
	}
}

// TestSynthAgreesWithGopacket checks the frame builder against gopacket's
// full decoder, so decoder tests do not test the builder against itself.
func TestSynthAgreesWithGopacket(t *testing.T) {
	for _, c := range decodeCases() {
		if c.f.Snaplen != 0 || c.f.Proto == 47 {
			continue
		}
		p := gopacket.NewPacket(frame(c.f), layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Errorf("%s: gopacket: %v", c.name, el.Error())
			continue
		}
		nl := p.NetworkLayer()
		if nl == nil {
			t.Errorf("%s: no network layer", c.name)
			continue
		}
		src, _ := netip.AddrFromSlice(nl.NetworkFlow().Src().Raw())
		if src != c.f.Src {
			t.Errorf("%s: src %v, want %v", c.name, src, c.f.Src)
		}
		if tl := p.TransportLayer(); tl != nil && c.want.Fragment != LaterFragment {
			tf := tl.TransportFlow()
			sp := uint16(tf.Src().Raw()[0])<<8 | uint16(tf.Src().Raw()[1])
			if sp != c.f.SrcPort {
				t.Errorf("%s: src port %d, want %d", c.name, sp, c.f.SrcPort)
			}
		}
	}
}

func TestDecodeBadPacketsCountedByReason(t *testing.T) {
	tcp := frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 6, SrcPort: 1, DstPort: 2})
	badIHL := append([]byte(nil), tcp...)
	badIHL[14] = 0x43
	badVer := append([]byte(nil), tcp...)
	badVer[14] = 0x55
	badDoff := append([]byte(nil), tcp...)
	badDoff[14+20+12] = 0x30
	arp := append(append([]byte(nil), tcp[:12]...), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	triple := frame(synth.Frame{VLANs: []uint16{1, 2, 3}, Src: v4a, Dst: v4b, Proto: 6, SrcPort: 1, DstPort: 2})
	v6 := frame(synth.Frame{Src: v6a, Dst: v6b, Proto: 17, SrcPort: 1, DstPort: 2, Exts: []synth.Ext{{Type: 60}}})
	cases := []struct {
		name string
		data []byte
		want Reason
	}{
		{"empty", nil, ReasonTruncatedLink},
		{"short ethernet", tcp[:10], ReasonTruncatedLink},
		{"short vlan tag", frame(synth.Frame{VLANs: []uint16{5}, Src: v4a, Dst: v4b, Proto: 6})[:16], ReasonTruncatedLink},
		{"arp", arp, ReasonNonIP},
		{"ipv4 header cut", tcp[:14+12], ReasonBadIPv4},
		{"ipv4 ihl 3", badIHL, ReasonBadIPv4},
		{"ipv4 version 5", badVer, ReasonBadIPv4},
		{"tcp header cut", tcp[:14+20+10], ReasonTruncatedL4},
		{"tcp data offset 3", badDoff, ReasonBadL4},
		{"udp cut", frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 17})[:14+20+4], ReasonTruncatedL4},
		{"icmp cut", frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 1})[:14+20+4], ReasonTruncatedL4},
		{"three vlan tags", triple, ReasonVLANDepth},
		{"ipv6 header cut", v6[:14+30], ReasonBadIPv6},
		{"ipv6 extension cut", v6[:14+40+4], ReasonBadIPv6Extension},
	}
	d := NewDecoder(layers.LinkTypeEthernet)
	for _, c := range cases {
		before := d.Stats.Bad[c.want]
		var m Meta
		if d.Decode(c.data, &m) {
			t.Errorf("%s: decoded %+v, want reason %v", c.name, m, c.want)
			continue
		}
		if d.Stats.Bad[c.want] != before+1 {
			t.Errorf("%s: counted %v, want %v", c.name, d.Stats.Bad, c.want)
		}
	}
	if got := d.Stats.BadTotal(); got != uint64(len(cases)) {
		t.Errorf("BadTotal = %d, want %d", got, len(cases))
	}
}

func TestDecodeRawIP(t *testing.T) {
	full := frame(synth.Frame{Src: v6a, Dst: v6b, Proto: 6, SrcPort: 9, DstPort: 10, TCPFlags: 2})
	d := NewDecoder(layers.LinkTypeRaw)
	var m Meta
	if !d.Decode(full[14:], &m) {
		t.Fatalf("raw ipv6: %+v", d.Stats)
	}
	if m.Family != 6 || m.SrcPort != 9 || m.DstPort != 10 || m.Src != addr16(v6a) {
		t.Errorf("raw ipv6 meta %+v", m)
	}
	if d.Decode([]byte{0x10, 0, 0}, &m) || d.Stats.Bad[ReasonNonIP] != 1 {
		t.Errorf("raw non-ip: %+v", d.Stats)
	}
	u := NewDecoder(layers.LinkTypeFDDI)
	if u.Decode(full, &m) || u.Stats.Bad[ReasonUnsupportedLinkType] != 1 {
		t.Errorf("fddi: %+v", u.Stats)
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	d := NewDecoder(layers.LinkTypeEthernet)
	var frames [][]byte
	for _, c := range decodeCases() {
		frames = append(frames, frame(c.f))
	}
	var m Meta
	for _, f := range frames { // warm up: TCP option slices grow once
		d.Decode(f, &m)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			if !d.Decode(f, &m) {
				t.Fatal("decode failed")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per %d packets = %v, want 0", len(frames), allocs)
	}
}
