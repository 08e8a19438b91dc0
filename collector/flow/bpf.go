package flow

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
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
//	ether [src|dst|host] MAC | ether proto N
//	greater N | less N         (frame length >= N, <= N)
//	PROTO[OFF] or PROTO[OFF:SIZE], optionally & MASK or | MASK, then
//	  = != > < >= <= VALUE     (PROTO: ether ip ip6 tcp udp icmp; SIZE 1 2 4)
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

// tokenize splits an expression into words and operators. A ':' is an
// operator only inside brackets (tcp[2:2]); elsewhere it belongs to an IPv6
// or MAC address.
func tokenize(s string) []string {
	var toks []string
	depth := 0
	word := -1
	flush := func(i int) {
		if word >= 0 {
			toks = append(toks, s[word:i])
			word = -1
		}
	}
	for i := 0; i < len(s); i++ {
		if op := operatorAt(s[i:], depth > 0); op != "" {
			flush(i)
			switch op {
			case "[":
				depth++
			case "]":
				depth--
			}
			toks = append(toks, op)
			i += len(op) - 1
			continue
		}
		if s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' {
			flush(i)
			continue
		}
		if word < 0 {
			word = i
		}
	}
	flush(len(s))
	for i, t := range toks {
		switch t {
		case "&&":
			toks[i] = "and"
		case "||":
			toks[i] = "or"
		case "!":
			toks[i] = "not"
		case "==":
			toks[i] = "="
		}
	}
	return toks
}

func operatorAt(s string, inBrackets bool) string {
	for _, op := range []string{"&&", "||", "!=", "==", ">=", "<="} {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	switch s[0] {
	case '(', ')', '!', '&', '|', '[', ']', '=', '>', '<':
		return s[:1]
	case ':':
		if inBrackets {
			return ":"
		}
	}
	return ""
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
	nLen   // packet length compared with lo
	nMAC   // Ethernet address
	nBytes // bytes of a header compared with a value
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
	// nLen: rel, value. nMAC: mac, dir. nBytes: layer, off, size, op and
	// mask (mask 0: none), rel, value.
	mac   [6]byte
	layer string
	off   uint32
	size  int
	op    string
	mask  uint32
	rel   string
	value uint32
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
	if p.peek() == "[" {
		return p.parseBytes(t)
	}
	switch t {
	case "ether":
		return p.parseEther()
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
	case "greater", "less":
		n, err := p.number(1 << 30)
		if err != nil {
			return nil, err
		}
		rel := ">="
		if t == "less" {
			rel = "<="
		}
		return &node{kind: nLen, rel: rel, value: uint32(n)}, nil
	case "vlan", "mpls", "len", "gateway", "broadcast", "multicast":
		return nil, fmt.Errorf("%q is not supported (supported: ip ip6 arp tcp udp icmp icmp6 proto host net port portrange src dst ether greater less PROTO[OFF:SIZE] and or not)", t)
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
	n, err := strconv.ParseInt(t, 0, 64) // decimal, 0x hex, 0 octal as in libpcap
	if err != nil || n < 0 || n > int64(limit) || strings.Contains(t, "_") {
		return 0, fmt.Errorf("%q: want a number from 0 to %d", t, limit)
	}
	return int(n), nil
}

// parseEther parses the rest of ether [src|dst|host] MAC or ether proto N.
func (p *filterParser) parseEther() (*node, error) {
	dir := dirAny
	switch p.next() {
	case "src":
		dir = dirSrc
	case "dst":
		dir = dirDst
	case "host":
	case "proto":
		n, err := p.number(65535)
		if err != nil {
			return nil, err
		}
		if n <= 1500 {
			return nil, fmt.Errorf("ether proto %d: want an EtherType above 1500 (802.3 lengths are not supported)", n)
		}
		return &node{kind: nEther, ether: uint16(n)}, nil
	default:
		p.pos--
		return nil, fmt.Errorf("ether %q: want src, dst, host or proto", p.next())
	}
	if dir != dirAny && p.peek() == "host" {
		p.next()
	}
	v := p.next()
	hw, err := net.ParseMAC(v)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("ether address %q: want six bytes like 02:00:5e:10:00:01", v)
	}
	n := &node{kind: nMAC, dir: dir}
	copy(n.mac[:], hw)
	return n, nil
}

// parseBytes parses LAYER [OFF(:SIZE)] [& MASK | \| MASK] REL VALUE, the
// byte-offset comparison of pcap-filter(7) with constant operands.
func (p *filterParser) parseBytes(layer string) (*node, error) {
	switch layer {
	case "ether", "ip", "ip6", "tcp", "udp", "icmp":
	default:
		return nil, fmt.Errorf("%q[...]: want ether, ip, ip6, tcp, udp or icmp", layer)
	}
	p.next() // [
	off, err := p.number(65535)
	if err != nil {
		return nil, err
	}
	n := &node{kind: nBytes, layer: layer, off: uint32(off), size: 1}
	if p.peek() == ":" {
		p.next()
		sz := p.next()
		switch sz {
		case "1", "2", "4":
			n.size = int(sz[0] - '0')
		default:
			return nil, fmt.Errorf("%s[%d:%s]: size must be 1, 2 or 4", layer, off, sz)
		}
	}
	if p.next() != "]" {
		return nil, fmt.Errorf("%s[%d: missing ]", layer, off)
	}
	if op := p.peek(); op == "&" || op == "|" {
		p.next()
		m, err := p.number(math.MaxUint32)
		if err != nil {
			return nil, err
		}
		n.op, n.mask = op, uint32(m)
	}
	switch rel := p.next(); rel {
	case "=", "!=", ">", "<", ">=", "<=":
		n.rel = rel
	default:
		return nil, fmt.Errorf("%s[%d] %q: want a comparison (=, !=, >, <, >=, <=)", layer, off, rel)
	}
	v, err := p.number(math.MaxUint32)
	if err != nil {
		return nil, err
	}
	n.value = uint32(v)
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
	case nLen:
		c.emit(bpf.LoadExtension{Num: bpf.ExtLen})
		c.compare(n.rel, n.value, t, f)
	case nMAC:
		c.genMAC(n, t, f)
	case nBytes:
		c.genBytes(n, t, f)
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

// compare jumps to t when A rel v holds, else to f.
func (c *codegen) compare(rel string, v uint32, t, f int) {
	switch rel {
	case "=":
		c.jump(bpf.JumpEqual, v, t, f)
	case "!=":
		c.jump(bpf.JumpEqual, v, f, t)
	case ">":
		c.jump(bpf.JumpGreaterThan, v, t, f)
	case ">=":
		c.jump(bpf.JumpGreaterOrEqual, v, t, f)
	case "<":
		c.jump(bpf.JumpGreaterOrEqual, v, f, t)
	case "<=":
		c.jump(bpf.JumpGreaterThan, v, f, t)
	}
}

func (c *codegen) genMAC(n *node, t, f int) {
	hi := uint32(binary.BigEndian.Uint16(n.mac[:2]))
	lo := binary.BigEndian.Uint32(n.mac[2:])
	one := func(off uint32, tt, ff int) {
		nx := c.label()
		c.emit(bpf.LoadAbsolute{Off: off + 2, Size: 4})
		c.jump(bpf.JumpEqual, lo, nx, ff)
		c.place(nx)
		c.emit(bpf.LoadAbsolute{Off: off, Size: 2})
		c.jump(bpf.JumpEqual, hi, tt, ff)
	}
	switch n.dir {
	case dirSrc:
		one(6, t, f)
	case dirDst:
		one(0, t, f)
	default:
		m := c.label()
		one(6, t, m)
		c.place(m)
		one(0, t, f)
	}
}

// genBytes loads the bytes as libpcap does: ether from the frame's start,
// ip and ip6 from their header after an EtherType check, and tcp, udp and
// icmp from the transport header of unfragmented IPv4 (or first fragments)
// only.
func (c *codegen) genBytes(n *node, t, f int) {
	var load bpf.Instruction
	switch n.layer {
	case "ether":
		load = bpf.LoadAbsolute{Off: n.off, Size: n.size}
	case "ip", "ip6":
		ether := uint32(0x0800)
		if n.layer == "ip6" {
			ether = 0x86dd
		}
		c.emit(bpf.LoadAbsolute{Off: offEther, Size: 2})
		ok := c.label()
		c.jump(bpf.JumpEqual, ether, ok, f)
		c.place(ok)
		load = bpf.LoadAbsolute{Off: offIP + n.off, Size: n.size}
	default:
		proto := map[string]uint32{"tcp": 6, "udp": 17, "icmp": 1}[n.layer]
		v4, isProto, unfrag := c.label(), c.label(), c.label()
		c.emit(bpf.LoadAbsolute{Off: offEther, Size: 2})
		c.jump(bpf.JumpEqual, 0x0800, v4, f)
		c.place(v4)
		c.emit(bpf.LoadAbsolute{Off: offV4Proto, Size: 1})
		c.jump(bpf.JumpEqual, proto, isProto, f)
		c.place(isProto)
		c.emit(bpf.LoadAbsolute{Off: offV4Frag, Size: 2})
		c.jump(bpf.JumpBitsSet, 0x1fff, f, unfrag)
		c.place(unfrag)
		c.emit(bpf.LoadMemShift{Off: offIP})
		load = bpf.LoadIndirect{Off: offIP + n.off, Size: n.size}
	}
	c.emit(load)
	switch n.op {
	case "&":
		c.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: n.mask})
	case "|":
		c.emit(bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: n.mask})
	}
	c.compare(n.rel, n.value, t, f)
}
