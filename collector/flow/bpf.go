package flow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// CompileFilter compiles a capture filter into classic BPF for Ethernet
// frames, as afpacket's SetBPF needs it.
//
// Why our own compiler: afpacket takes raw BPF; gopacket/pcap can compile
// tcpdump expressions only through libpcap (cgo, libpcap-dev at build time,
// libpcap.so at run time, on every agent); golang.org/x/net/bpf assembles but
// does not compile expressions; running "tcpdump -ddd" adds a binary to every
// agent. A capture filter for flow metering needs a small part of the pcap
// language, so we compile that part here, in pure Go, and test it against
// tcpdump's own output where tcpdump is installed.
//
// The language is pcap-filter(7)'s core:
//
//	ip | ip6 | arp | tcp | udp | icmp | icmp6
//	[ip|ip6] proto N
//	[src|dst] host ADDR        (IPv4 or IPv6)
//	[src|dst] net CIDR
//	[tcp|udp] [src|dst] port N
//	[tcp|udp] [src|dst] portrange N-M
//	not X | X and Y | X or Y | ( X )   (also !, &&, ||)
//
// Semantics follow libpcap for untagged frames: IPv4 ports are read only
// from unfragmented packets or first fragments; IPv6 ports, tcp, udp and
// icmp6 look at the header right after the fixed IPv6 header (no extension
// header walk). On Linux the kernel strips the outer VLAN tag before the
// filter runs, so tagged traffic on a trunk matches too. An empty expression
// accepts everything.
func CompileFilter(expr string, snaplen int) ([]bpf.RawInstruction, error) {
	if snaplen <= 0 {
		snaplen = 262144
	}
	p := &filterParser{toks: tokenize(expr)}
	c := &codegen{}
	accept, reject := c.label(), c.label()
	if len(p.toks) == 0 {
		c.emit(bpf.RetConstant{Val: uint32(snaplen)})
		return c.assemble()
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, fmt.Errorf("compile filter %q: %w", expr, err)
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("compile filter %q: unexpected %q", expr, p.toks[p.pos])
	}
	if err := c.gen(n, accept, reject); err != nil {
		return nil, fmt.Errorf("compile filter %q: %w", expr, err)
	}
	c.place(accept)
	c.emit(bpf.RetConstant{Val: uint32(snaplen)})
	c.place(reject)
	c.emit(bpf.RetConstant{Val: 0})
	raw, err := c.assemble()
	if err != nil {
		return nil, fmt.Errorf("compile filter %q: %w", expr, err)
	}
	return raw, nil
}

func tokenize(s string) []string {
	for _, op := range []string{"(", ")", "&&", "||", "!"} {
		s = strings.ReplaceAll(s, op, " "+op+" ")
	}
	toks := strings.Fields(s)
	for i, t := range toks {
		switch t {
		case "&&":
			toks[i] = "and"
		case "||":
			toks[i] = "or"
		case "!":
			toks[i] = "not"
		}
	}
	return toks
}

type nodeKind int

const (
	nAnd nodeKind = iota
	nOr
	nNot
	nEther // ethertype
	nProto // IP protocol in IPv4 and/or IPv6
	nHost  // address or prefix
	nPort  // port range
)

const (
	dirAny = iota
	dirSrc
	dirDst
)

type node struct {
	kind   nodeKind
	a, b   *node
	ether  uint16
	proto  int // -1 any of tcp, udp, sctp (ports)
	fam    int // 0 both, 4, 6
	prefix netip.Prefix
	dir    int
	lo, hi uint16
}

type filterParser struct {
	toks []string
	pos  int
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) next() string {
	t := p.peek()
	if t != "" {
		p.pos++
	}
	return t
}

func (p *filterParser) parseOr() (*node, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &node{kind: nOr, a: l, b: r}
	}
	return l, nil
}

func (p *filterParser) parseAnd() (*node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &node{kind: nAnd, a: l, b: r}
	}
	return l, nil
}

func (p *filterParser) parseUnary() (*node, error) {
	switch p.peek() {
	case "not":
		p.next()
		n, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nNot, a: n}, nil
	case "(":
		p.next()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return n, nil
	case "":
		return nil, fmt.Errorf("expression ends early")
	}
	return p.parsePrimitive()
}

func (p *filterParser) parsePrimitive() (*node, error) {
	t := p.next()
	switch t {
	case "ip", "ip6":
		fam, ether := 4, uint16(0x0800)
		if t == "ip6" {
			fam, ether = 6, 0x86dd
		}
		if p.peek() == "proto" {
			p.next()
			n, err := p.number(255)
			if err != nil {
				return nil, err
			}
			return &node{kind: nProto, proto: n, fam: fam}, nil
		}
		return &node{kind: nEther, ether: ether}, nil
	case "arp":
		return &node{kind: nEther, ether: 0x0806}, nil
	case "icmp":
		return &node{kind: nProto, proto: 1, fam: 4}, nil
	case "icmp6":
		return &node{kind: nProto, proto: 58, fam: 6}, nil
	case "proto":
		n, err := p.number(255)
		if err != nil {
			return nil, err
		}
		return &node{kind: nProto, proto: n}, nil
	case "tcp", "udp":
		proto := 6
		if t == "udp" {
			proto = 17
		}
		switch p.peek() {
		case "src", "dst", "port", "portrange":
			return p.parseDirected(proto)
		}
		return &node{kind: nProto, proto: proto}, nil
	case "src", "dst", "host", "net", "port", "portrange":
		p.pos--
		return p.parseDirected(-1)
	case "vlan", "mpls", "ether", "len", "less", "greater", "gateway", "broadcast", "multicast":
		return nil, fmt.Errorf("%q is not supported (supported: ip ip6 arp tcp udp icmp icmp6 proto host net port portrange src dst and or not)", t)
	}
	return nil, fmt.Errorf("unknown primitive %q", t)
}

// parseDirected parses [src|dst] (host|net|port|portrange) VALUE; proto >= 0
// restricts ports to that protocol.
func (p *filterParser) parseDirected(proto int) (*node, error) {
	dir := dirAny
	switch p.peek() {
	case "src":
		dir = dirSrc
		p.next()
	case "dst":
		dir = dirDst
		p.next()
	}
	kw := p.next()
	if proto >= 0 && kw != "port" && kw != "portrange" {
		return nil, fmt.Errorf("%q after a protocol, want port or portrange", kw)
	}
	switch kw {
	case "host", "net":
		v := p.next()
		var pfx netip.Prefix
		var err error
		if strings.Contains(v, "/") {
			pfx, err = netip.ParsePrefix(v)
			pfx = pfx.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(v)
			if err == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", kw, v, err)
		}
		if kw == "host" && pfx.Bits() != pfx.Addr().BitLen() {
			return nil, fmt.Errorf("host %q: use net for a prefix", v)
		}
		return &node{kind: nHost, prefix: pfx, dir: dir}, nil
	case "port":
		n, err := p.number(65535)
		if err != nil {
			return nil, err
		}
		return &node{kind: nPort, proto: proto, dir: dir, lo: uint16(n), hi: uint16(n)}, nil
	case "portrange":
		v := p.next()
		lo, hi, ok := strings.Cut(v, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("portrange %q: want LOW-HIGH", v)
		}
		return &node{kind: nPort, proto: proto, dir: dir, lo: uint16(a), hi: uint16(b)}, nil
	}
	return nil, fmt.Errorf("%q: want host, net, port or portrange", kw)
}

func (p *filterParser) number(limit int) (int, error) {
	t := p.next()
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("%q: want a number from 0 to %d", t, limit)
	}
	return n, nil
}

// codegen emits instructions whose jumps name labels; assemble resolves
// them into BPF's forward skips.
type codegen struct {
	prog   []pins
	labels []int // label -> instruction index, -1 until placed
}

type pins struct {
	ins    bpf.Instruction // nil for a conditional jump
	cond   bpf.JumpTest
	val    uint32
	jt, jf int
}

func (c *codegen) label() int {
	c.labels = append(c.labels, -1)
	return len(c.labels) - 1
}

func (c *codegen) place(l int) { c.labels[l] = len(c.prog) }

func (c *codegen) emit(i bpf.Instruction) { c.prog = append(c.prog, pins{ins: i}) }

func (c *codegen) jump(cond bpf.JumpTest, val uint32, jt, jf int) {
	c.prog = append(c.prog, pins{cond: cond, val: val, jt: jt, jf: jf})
}

func (c *codegen) assemble() ([]bpf.RawInstruction, error) {
	out := make([]bpf.Instruction, len(c.prog))
	for pc, p := range c.prog {
		if p.ins != nil {
			out[pc] = p.ins
			continue
		}
		st, sf := c.labels[p.jt]-pc-1, c.labels[p.jf]-pc-1
		if st < 0 || sf < 0 {
			return nil, fmt.Errorf("internal error: backward jump")
		}
		if st > 255 || sf > 255 {
			return nil, fmt.Errorf("filter too long: a jump spans more than 255 instructions")
		}
		out[pc] = bpf.JumpIf{Cond: p.cond, Val: p.val, SkipTrue: uint8(st), SkipFalse: uint8(sf)}
	}
	if len(out) > 4096 { // BPF_MAXINSNS
		return nil, fmt.Errorf("filter has %d instructions, the kernel takes 4096", len(out))
	}
	return bpf.Assemble(out)
}

const (
	offEther   = 12
	offIP      = 14
	offV4Frag  = offIP + 6
	offV4Proto = offIP + 9
	offV4Src   = offIP + 12
	offV4Dst   = offIP + 16
	offV6Next  = offIP + 6
	offV6Src   = offIP + 8
	offV6Dst   = offIP + 24
	offV6L4    = offIP + 40
)

func (c *codegen) gen(n *node, t, f int) error {
	switch n.kind {
	case nAnd:
		m := c.label()
		if err := c.gen(n.a, m, f); err != nil {
			return err
		}
		c.place(m)
		return c.gen(n.b, t, f)
	case nOr:
		m := c.label()
		if err := c.gen(n.a, t, m); err != nil {
			return err
		}
		c.place(m)
		return c.gen(n.b, t, f)
	case nNot:
		return c.gen(n.a, f, t)
	case nEther:
		c.emit(bpf.LoadAbsolute{Off: offEther, Size: 2})
		c.jump(bpf.JumpEqual, uint32(n.ether), t, f)
	case nProto:
		c.emit(bpf.LoadAbsolute{Off: offEther, Size: 2})
		l4, not4, l6 := c.label(), c.label(), c.label()
		if n.fam != 6 {
			c.jump(bpf.JumpEqual, 0x0800, l4, not4)
			c.place(l4)
			c.emit(bpf.LoadAbsolute{Off: offV4Proto, Size: 1})
			c.jump(bpf.JumpEqual, uint32(n.proto), t, f)
			c.place(not4)
		}
		if n.fam != 4 {
			c.jump(bpf.JumpEqual, 0x86dd, l6, f)
			c.place(l6)
			c.emit(bpf.LoadAbsolute{Off: offV6Next, Size: 1})
			c.jump(bpf.JumpEqual, uint32(n.proto), t, f)
		} else {
			c.jump(bpf.JumpEqual, 0, f, f) // not IPv4: fail
		}
	case nHost:
		return c.genHost(n, t, f)
	case nPort:
		return c.genPort(n, t, f)
	}
	return nil
}

func (c *codegen) genHost(n *node, t, f int) error {
	a := n.prefix.Addr()
	c.emit(bpf.LoadAbsolute{Off: offEther, Size: 2})
	l := c.label()
	if a.Is4() {
		c.jump(bpf.JumpEqual, 0x0800, l, f)
		c.place(l)
		b := a.As4()
		word := binary.BigEndian.Uint32(b[:])
		mask := uint32(0xffffffff) << (32 - n.prefix.Bits())
		if n.prefix.Bits() == 0 {
			mask = 0
		}
		one := func(off uint32, tt, ff int) {
			c.emit(bpf.LoadAbsolute{Off: off, Size: 4})
			if mask != 0xffffffff {
				c.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
			}
			c.jump(bpf.JumpEqual, word&mask, tt, ff)
		}
		switch n.dir {
		case dirSrc:
			one(offV4Src, t, f)
		case dirDst:
			one(offV4Dst, t, f)
		default:
			m := c.label()
			one(offV4Src, t, m)
			c.place(m)
			one(offV4Dst, t, f)
		}
		return nil
	}
	c.jump(bpf.JumpEqual, 0x86dd, l, f)
	c.place(l)
	b := a.As16()
	one := func(off uint32, tt, ff int) {
		bitsLeft := n.prefix.Bits()
		for w := 0; w < 4 && bitsLeft > 0; w++ {
			word := binary.BigEndian.Uint32(b[4*w:])
			mask := uint32(0xffffffff)
			if bitsLeft < 32 {
				mask <<= 32 - bitsLeft
			}
			bitsLeft -= 32
			c.emit(bpf.LoadAbsolute{Off: off + uint32(4*w), Size: 4})
			if mask != 0xffffffff {
				c.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
			}
			if w == 3 || bitsLeft <= 0 {
				c.jump(bpf.JumpEqual, word&mask, tt, ff)
			} else {
				nx := c.label()
				c.jump(bpf.JumpEqual, word&mask, nx, ff)
				c.place(nx)
			}
		}
		if n.prefix.Bits() == 0 {
			c.jump(bpf.JumpEqual, 0x86dd, tt, tt) // A still holds the ethertype
		}
	}
	switch n.dir {
	case dirSrc:
		one(offV6Src, t, f)
	case dirDst:
		one(offV6Dst, t, f)
	default:
		m := c.label()
		one(offV6Src, t, m)
		c.place(m)
		one(offV6Dst, t, f)
	}
	return nil
}

func (c *codegen) genPort(n *node, t, f int) error {
	protoCheck := func(ports, fail int) {
		if n.proto >= 0 {
			c.jump(bpf.JumpEqual, uint32(n.proto), ports, fail)
			return
		}
		for _, p := range []uint32{6, 17} {
			nx := c.label()
			c.jump(bpf.JumpEqual, p, ports, nx)
			c.place(nx)
		}
		c.jump(bpf.JumpEqual, 132, ports, fail)
	}
	// match tests the port loaded by load against the range.
	match := func(load bpf.Instruction, tt, ff int) {
		c.emit(load)
		if n.lo == n.hi {
			c.jump(bpf.JumpEqual, uint32(n.lo), tt, ff)
			return
		}
		nx := c.label()
		c.jump(bpf.JumpGreaterOrEqual, uint32(n.lo), nx, ff)
		c.place(nx)
		c.jump(bpf.JumpGreaterThan, uint32(n.hi), ff, tt)
	}
	both := func(src, dst bpf.Instruction) {
		switch n.dir {
		case dirSrc:
			match(src, t, f)
		case dirDst:
			match(dst, t, f)
		default:
			m := c.label()
			match(src, t, m)
			c.place(m)
			match(dst, t, f)
		}
	}
	c.emit(bpf.LoadAbsolute{Off: offEther, Size: 2})
	l4, not4, l6, ports4, unfrag, ports6 := c.label(), c.label(), c.label(), c.label(), c.label(), c.label()
	c.jump(bpf.JumpEqual, 0x0800, l4, not4)
	c.place(l4)
	c.emit(bpf.LoadAbsolute{Off: offV4Proto, Size: 1})
	protoCheck(ports4, f)
	c.place(ports4)
	c.emit(bpf.LoadAbsolute{Off: offV4Frag, Size: 2})
	c.jump(bpf.JumpBitsSet, 0x1fff, f, unfrag)
	c.place(unfrag)
	c.emit(bpf.LoadMemShift{Off: offIP})
	both(bpf.LoadIndirect{Off: offIP, Size: 2}, bpf.LoadIndirect{Off: offIP + 2, Size: 2})
	c.place(not4)
	c.jump(bpf.JumpEqual, 0x86dd, l6, f)
	c.place(l6)
	c.emit(bpf.LoadAbsolute{Off: offV6Next, Size: 1})
	protoCheck(ports6, f)
	c.place(ports6)
	both(bpf.LoadAbsolute{Off: offV6L4, Size: 2}, bpf.LoadAbsolute{Off: offV6L4 + 2, Size: 2})
	return nil
}
