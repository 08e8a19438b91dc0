package flow

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Reason says why a packet yielded no flow key. Every such packet is counted
// under exactly one reason; none is fatal.
type Reason uint8

// Reasons a packet is not turned into a flow key.
const (
	ReasonNone                Reason = iota
	ReasonTruncatedLink              // shorter than its link-layer header
	ReasonVLANDepth                  // more than two 802.1Q/802.1ad tags
	ReasonNonIP                      // ARP, LLC, LLDP, ...: no IP inside
	ReasonBadIPv4                    // IPv4 header invalid or truncated
	ReasonBadIPv6                    // IPv6 header invalid or truncated
	ReasonBadIPv6Extension           // IPv6 extension header invalid or truncated
	ReasonTruncatedL4                // TCP, UDP or ICMP header cut short
	ReasonBadL4                      // TCP data offset below 5 and the like
	ReasonUnsupportedLinkType        // a link type this decoder does not speak
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:                "none",
	ReasonTruncatedLink:       "truncated_link",
	ReasonVLANDepth:           "vlan_depth",
	ReasonNonIP:               "non_ip",
	ReasonBadIPv4:             "bad_ipv4",
	ReasonBadIPv6:             "bad_ipv6",
	ReasonBadIPv6Extension:    "bad_ipv6_extension",
	ReasonTruncatedL4:         "truncated_l4",
	ReasonBadL4:               "bad_l4",
	ReasonUnsupportedLinkType: "unsupported_link_type",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason_%d", uint8(r))
}

// Fragment positions of an IP packet.
const (
	NotFragment   = 0
	FirstFragment = 1 // carries the transport header and so the ports
	LaterFragment = 2 // no transport header: ports are zero
)

// Meta is what the decoder extracts from one packet: the directional flow
// identity and the TCP flags. IPv4 addresses occupy the first four bytes of
// Src and Dst, the rest is zero. For ICMP, SrcPort and DstPort both hold
// type<<8|code, with echo replies folded onto echo requests so that both
// directions of a ping share one flow.
type Meta struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	VLAN             uint16 // outermost VLAN ID, 0 when untagged
	Proto            uint8  // IP protocol number
	Family           uint8  // 4 or 6
	TCPFlags         uint8  // FIN..CWR as on the wire
	Fragment         uint8  // NotFragment, FirstFragment or LaterFragment
}

// DecodeStats counts packets by outcome. Fast and General count decoded
// packets by the path that decoded them.
type DecodeStats struct {
	Fast, General uint64
	Bad           [NumReasons]uint64
}

// BadTotal is the number of packets that yielded no flow key.
func (s *DecodeStats) BadTotal() uint64 {
	var n uint64
	for _, v := range s.Bad[1:] {
		n += v
	}
	return n
}

// Decoder extracts Meta from raw frames. It is not safe for concurrent use:
// each capture goroutine owns one. Its layers are allocated once, so
// decoding a packet allocates nothing.
type Decoder struct {
	link  layers.LinkType
	Stats DecodeStats

	parser  *gopacket.DecodingLayerParser // first layer Ethernet
	parser4 *gopacket.DecodingLayerParser // raw IPv4
	parser6 *gopacket.DecodingLayerParser // raw IPv6
	decoded []gopacket.LayerType

	eth   layers.Ethernet
	dot1q vlanLayer
	ip4   ipv4Layer
	ip6   ipv6Layer
	ext   layers.IPv6ExtensionSkipper
	frag6 ipv6FragLayer
	tcp   tcpLayer
	udp   layers.UDP
	icmp4 layers.ICMPv4
	icmp6 layers.ICMPv6
}

// NewDecoder returns a decoder for frames of the given link type: Ethernet,
// or raw IP (LinkTypeRaw, LinkTypeIPv4, LinkTypeIPv6). Other link types are
// accepted and every packet is counted as ReasonUnsupportedLinkType.
func NewDecoder(link layers.LinkType) *Decoder {
	d := &Decoder{link: link, decoded: make([]gopacket.LayerType, 0, 16)}
	ls := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.ext, &d.frag6, &d.tcp, &d.udp, &d.icmp4, &d.icmp6}
	mk := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first)
		// Array lookup: a handful of layers, no map hashing per layer.
		p.SetDecodingLayerContainer(gopacket.DecodingLayerArray(nil))
		for _, l := range ls {
			p.AddDecodingLayer(l) // frag6 after ext: it replaces the skipper for fragments
		}
		p.IgnoreUnsupported = true
		return p
	}
	d.parser = mk(layers.LayerTypeEthernet)
	d.parser4 = mk(layers.LayerTypeIPv4)
	d.parser6 = mk(layers.LayerTypeIPv6)
	return d
}

// LinkType is the link type the decoder was built for.
func (d *Decoder) LinkType() layers.LinkType { return d.link }

func isRawLink(l layers.LinkType) bool {
	// 12 and 14 are raw IP on some BSDs; 101 is LINKTYPE_RAW.
	return l == layers.LinkTypeRaw || l == layers.LinkTypeIPv4 || l == layers.LinkTypeIPv6 || l == 12 || l == 14
}

// Decode fills m from one frame. It returns false, and counts the reason,
// when the frame carries no decodable IP packet.
func (d *Decoder) Decode(data []byte, m *Meta) bool {
	if d.link == layers.LinkTypeEthernet && d.fastEthernet(data, m) {
		d.Stats.Fast++
		return true
	}
	r := d.general(data, m)
	if r != ReasonNone {
		d.Stats.Bad[r]++
		return false
	}
	d.Stats.General++
	return true
}

// DecodeGeneral decodes with gopacket's DecodingLayerParser only, skipping
// the fast path. Tests and the fuzzer use it to check that both paths agree.
func (d *Decoder) DecodeGeneral(data []byte, m *Meta) Reason {
	return d.general(data, m)
}

// DecodeFast runs only the hand-written fast path; false means the packet
// needs the general path (not that it is bad).
func (d *Decoder) DecodeFast(data []byte, m *Meta) bool {
	return d.link == layers.LinkTypeEthernet && d.fastEthernet(data, m)
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// fastEthernet handles Ethernet, up to two VLAN tags, IPv4 without options
// or IPv6 without extension headers, and TCP, UDP, ICMP or ICMPv6. It accepts a strict
// subset of what the general path accepts and must produce the same Meta;
// anything unusual is left to the general path.
func (d *Decoder) fastEthernet(data []byte, m *Meta) bool {
	if len(data) < 14 {
		return false
	}
	et := be16(data[12:])
	off := 14
	var vlan uint16
	if et == 0x8100 || et == 0x88a8 {
		if len(data) < 18 {
			return false
		}
		vlan = be16(data[14:]) & 0x0fff
		et = be16(data[16:])
		off = 18
		if et == 0x8100 {
			if len(data) < 22 {
				return false
			}
			et = be16(data[20:])
			off = 22
		}
	}
	b := data[off:]
	switch et {
	case 0x0800:
		if len(b) < 20 || b[0] != 0x45 {
			return false
		}
		tot := int(be16(b[2:]))
		if tot < 20 {
			return false
		}
		l4 := b[20:]
		if tot < len(b) {
			l4 = b[20:tot]
		}
		ff := be16(b[6:])
		proto := b[9]
		var fr uint8
		if ff&0x3fff != 0 {
			if ff&0x1fff != 0 {
				*m = Meta{VLAN: vlan, Proto: proto, Family: 4, Fragment: LaterFragment}
				copy(m.Src[:4], b[12:16])
				copy(m.Dst[:4], b[16:20])
				return true
			}
			fr = FirstFragment
		}
		if !fastL4(l4, proto, m) {
			return false
		}
		m.Src = [16]byte{}
		m.Dst = [16]byte{}
		copy(m.Src[:4], b[12:16])
		copy(m.Dst[:4], b[16:20])
		m.VLAN, m.Proto, m.Family, m.Fragment = vlan, proto, 4, fr
		return true
	case 0x86dd:
		if len(b) < 40 || b[0]>>4 != 6 {
			return false
		}
		plen := int(be16(b[4:]))
		proto := b[6]
		if plen == 0 {
			return false
		}
		l4 := b[40:]
		if plen < len(l4) {
			l4 = l4[:plen]
		}
		if !fastL4(l4, proto, m) {
			return false
		}
		copy(m.Src[:], b[8:24])
		copy(m.Dst[:], b[24:40])
		m.VLAN, m.Proto, m.Family, m.Fragment = vlan, proto, 6, NotFragment
		return true
	}
	return false
}

func fastL4(l4 []byte, proto uint8, m *Meta) bool {
	switch proto {
	case 6:
		if len(l4) < 20 {
			return false
		}
		doff := int(l4[12]>>4) * 4
		if doff < 20 || doff > len(l4) {
			return false
		}
		m.SrcPort, m.DstPort, m.TCPFlags = be16(l4), be16(l4[2:]), l4[13]
		return true
	case 17:
		if len(l4) < 8 {
			return false
		}
		if ul := be16(l4[4:]); ul != 0 && ul < 8 {
			return false
		}
		m.SrcPort, m.DstPort, m.TCPFlags = be16(l4), be16(l4[2:]), 0
		return true
	case 1, 58:
		// ICMP goes by protocol number, whatever the IP version, as in
		// the general path; echo replies fold onto requests.
		var tc uint16
		if proto == 1 {
			if len(l4) < 8 {
				return false
			}
			if tc = be16(l4); tc>>8 == 0 {
				tc |= 8 << 8
			}
		} else {
			if len(l4) < 4 {
				return false
			}
			if tc = be16(l4); tc>>8 == 129 {
				tc = 128<<8 | tc&0xff
			}
		}
		m.SrcPort, m.DstPort, m.TCPFlags = tc, tc, 0
		return true
	}
	return false
}

// general decodes with gopacket's DecodingLayerParser.
func (d *Decoder) general(data []byte, m *Meta) Reason {
	var p *gopacket.DecodingLayerParser
	first := layers.LayerTypeEthernet
	switch {
	case d.link == layers.LinkTypeEthernet:
		p = d.parser
		if len(data) < 14 {
			return ReasonTruncatedLink
		}
	case isRawLink(d.link):
		if len(data) < 1 {
			return ReasonTruncatedLink
		}
		switch data[0] >> 4 {
		case 4:
			p, first = d.parser4, layers.LayerTypeIPv4
		case 6:
			p, first = d.parser6, layers.LayerTypeIPv6
		default:
			return ReasonNonIP
		}
	default:
		return ReasonUnsupportedLinkType
	}
	d.dot1q.depth, d.dot1q.outer = 0, 0
	d.frag6.offset, d.frag6.seen = 0, false
	err := p.DecodeLayers(data, &d.decoded)
	*m = Meta{}
	var haveIP, haveL4 bool
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			haveIP = true
			m.Family = 4
			m.Proto = uint8(d.ip4.Protocol)
			copy(m.Src[:4], d.ip4.SrcIP)
			copy(m.Dst[:4], d.ip4.DstIP)
			if d.ip4.FragOffset != 0 {
				m.Fragment = LaterFragment
			} else if d.ip4.Flags&layers.IPv4MoreFragments != 0 {
				m.Fragment = FirstFragment
			}
		case layers.LayerTypeIPv6:
			haveIP = true
			m.Family = 6
			m.Proto = uint8(d.ip6.NextLayerProto())
			copy(m.Src[:], d.ip6.SrcIP)
			copy(m.Dst[:], d.ip6.DstIP)
		case layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6HopByHop:
			m.Proto = uint8(d.ext.NextHeader)
		case layers.LayerTypeIPv6Fragment:
			m.Proto = d.frag6.next
			if d.frag6.offset != 0 {
				m.Fragment = LaterFragment
			} else {
				m.Fragment = FirstFragment
			}
		case layers.LayerTypeTCP:
			haveL4 = true
			m.SrcPort, m.DstPort = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
			m.TCPFlags = d.tcp.Contents[13]
		case layers.LayerTypeUDP:
			haveL4 = true
			m.SrcPort, m.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
		case layers.LayerTypeICMPv4:
			haveL4 = true
			ty, code := d.icmp4.TypeCode.Type(), d.icmp4.TypeCode.Code()
			if ty == layers.ICMPv4TypeEchoReply {
				ty = layers.ICMPv4TypeEchoRequest
			}
			m.SrcPort = uint16(ty)<<8 | uint16(code)
			m.DstPort = m.SrcPort
		case layers.LayerTypeICMPv6:
			haveL4 = true
			ty, code := d.icmp6.TypeCode.Type(), d.icmp6.TypeCode.Code()
			if ty == layers.ICMPv6TypeEchoReply {
				ty = layers.ICMPv6TypeEchoRequest
			}
			m.SrcPort = uint16(ty)<<8 | uint16(code)
			m.DstPort = m.SrcPort
		}
	}
	m.VLAN = d.dot1q.outer
	if d.dot1q.depth > 2 {
		return ReasonVLANDepth
	}
	if err == nil {
		if !haveIP {
			return ReasonNonIP
		}
		if !haveL4 && m.Fragment != LaterFragment && transportHasPorts(m.Proto) {
			// IPv4/IPv6 decoded but the TCP/UDP/ICMP decoder was never
			// reached: cannot happen with our layer set, keep it honest.
			return ReasonTruncatedL4
		}
		return ReasonNone
	}
	// The layer that failed is the one after the last decoded; its bytes
	// are the payload of the last decoded layer.
	next, rest := first, data
	if n := len(d.decoded); n > 0 {
		next, rest = d.nextAfter(d.decoded[n-1])
	}
	switch next {
	case layers.LayerTypeEthernet, layers.LayerTypeDot1Q:
		return ReasonTruncatedLink
	case layers.LayerTypeIPv4:
		return ReasonBadIPv4
	case layers.LayerTypeIPv6:
		return ReasonBadIPv6
	case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6Fragment:
		return ReasonBadIPv6Extension
	case layers.LayerTypeTCP:
		if len(rest) >= 20 && rest[12]>>4 < 5 {
			return ReasonBadL4
		}
		return ReasonTruncatedL4
	case layers.LayerTypeUDP:
		if len(rest) >= 8 {
			return ReasonBadL4 // length field 1..7
		}
		return ReasonTruncatedL4
	case layers.LayerTypeICMPv4, layers.LayerTypeICMPv6:
		return ReasonTruncatedL4
	}
	return ReasonNonIP
}

func transportHasPorts(p uint8) bool { return p == 6 || p == 17 || p == 1 || p == 58 }

func (d *Decoder) nextAfter(t gopacket.LayerType) (gopacket.LayerType, []byte) {
	switch t {
	case layers.LayerTypeEthernet:
		return d.eth.NextLayerType(), d.eth.Payload
	case layers.LayerTypeDot1Q:
		return d.dot1q.NextLayerType(), d.dot1q.Payload
	case layers.LayerTypeIPv4:
		return d.ip4.NextLayerType(), d.ip4.Payload
	case layers.LayerTypeIPv6:
		return d.ip6.NextLayerType(), d.ip6.Payload
	case layers.LayerTypeIPv6Fragment:
		return d.frag6.NextLayerType(), d.frag6.Payload
	case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination:
		return d.ext.NextLayerType(), d.ext.Payload
	}
	return gopacket.LayerTypeZero, nil
}

// vlanLayer is layers.Dot1Q that remembers the outermost tag and the depth:
// the parser reuses one layer object for both tags of a QinQ frame.
type vlanLayer struct {
	layers.Dot1Q
	depth int
	outer uint16
}

func (v *vlanLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := v.Dot1Q.DecodeFromBytes(data, df); err != nil {
		return err
	}
	v.depth++
	if v.depth == 1 {
		v.outer = v.VLANIdentifier
	}
	if v.depth > 2 {
		return errVLANDepth
	}
	return nil
}

var (
	errVLANDepth    = fmt.Errorf("more than two vlan tags")
	errIPv4Version  = fmt.Errorf("ipv4 header with another version")
	errIPv6Version  = fmt.Errorf("ipv6 header with another version")
	errIPv6Fragment = fmt.Errorf("ipv6 fragment header shorter than 8 bytes")
)

// ipv4Layer is layers.IPv4 that checks the version and lets the first
// fragment through to the transport decoder (it carries the ports); later
// fragments stop at the IP layer.
type ipv4Layer struct{ layers.IPv4 }

func (ip *ipv4Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) > 0 && data[0]>>4 != 4 {
		return errIPv4Version
	}
	return ip.IPv4.DecodeFromBytes(data, df)
}

func (ip *ipv4Layer) NextLayerType() gopacket.LayerType {
	if ip.FragOffset != 0 {
		return gopacket.LayerTypeFragment
	}
	return ip.Protocol.LayerType()
}

// tcpLayer is layers.TCP that keeps a segment whose options are malformed:
// its ports and flags are sound, and the fast path (which never parses
// options) counts it too.
type tcpLayer struct{ layers.TCP }

func (t *tcpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	err := t.TCP.DecodeFromBytes(data, df)
	if err != nil && len(data) >= 20 && t.DataOffset >= 5 && int(t.DataOffset)*4 <= len(data) {
		t.Contents, t.Payload = data[:int(t.DataOffset)*4], data[int(t.DataOffset)*4:]
		return nil
	}
	return err
}

// ipv6Layer is layers.IPv6 that checks the version.
type ipv6Layer struct{ layers.IPv6 }

func (ip *ipv6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) > 0 && data[0]>>4 != 6 {
		return errIPv6Version
	}
	if len(data) >= 40 && data[6] == uint8(layers.IPProtocolIPv6HopByHop) {
		// gopacket folds hop-by-hop into the IPv6 layer and allocates one
		// object per option; leave it to the extension skipper instead.
		// A jumbogram (length 0) keeps all the captured bytes.
		ip.Version, ip.NextHeader, ip.HopByHop = 6, layers.IPProtocolIPv6HopByHop, nil
		ip.Length = be16(data[4:])
		ip.SrcIP, ip.DstIP = data[8:24], data[24:40]
		end := len(data)
		if n := 40 + int(ip.Length); ip.Length != 0 && n < end {
			end = n
		} else if n > end {
			df.SetTruncated()
		}
		ip.BaseLayer = layers.BaseLayer{Contents: data[:40], Payload: data[40:end]}
		return nil
	}
	return ip.IPv6.DecodeFromBytes(data, df)
}

// NextLayerProto is the protocol after the fixed header and any hop-by-hop
// header that gopacket folds into the IPv6 layer.
func (ip *ipv6Layer) NextLayerProto() layers.IPProtocol {
	if ip.HopByHop != nil {
		return ip.HopByHop.NextHeader
	}
	return ip.NextHeader
}

// ipv6FragLayer decodes the IPv6 fragment header: the first fragment goes on
// to the transport header, later fragments stop.
type ipv6FragLayer struct {
	layers.BaseLayer
	next   uint8
	offset uint16
	seen   bool
}

func (f *ipv6FragLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errIPv6Fragment
	}
	f.next = data[0]
	f.offset = be16(data[2:]) >> 3
	f.seen = true
	f.BaseLayer = layers.BaseLayer{Contents: data[:8], Payload: data[8:]}
	return nil
}

func (f *ipv6FragLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6Fragment }

func (f *ipv6FragLayer) NextLayerType() gopacket.LayerType {
	if f.offset != 0 {
		return gopacket.LayerTypeFragment
	}
	return layers.IPProtocol(f.next).LayerType()
}
