package synth

import (
	"container/heap"
	"math"
	"math/rand"
	"net/netip"
	"time"
)

// EnterpriseConfig describes a seeded busy enterprise edge, benign by
// default: clients and a few busy proxies reaching Zipf-popular internal
// servers and internet hosts over short HTTPS, DNS, QUIC, NTP and ICMP
// flows (a small share of them failing as real connections do), a nightly
// backup streaming all along, and CDN bursts (one client opening hundreds
// of answered flows to hundreds of addresses in a second). Attacks add
// scans and floods at given times. Addresses: clients 10.1.0.0/16,
// servers 10.2.0.0/16, resolvers 10.3.0.0/24, the rest is internet.
type EnterpriseConfig struct {
	Seed           int64
	Start          time.Time
	Duration       time.Duration
	FlowsPerSecond float64 // new benign flows per second
	Clients        int
	Servers        int     // internal servers (Zipf popularity)
	Internet       int     // internet hosts (Zipf popularity)
	Proxies        int     // busy clients (proxies, NAT gateways)
	ProxyShare     float64 // share of flows opened by the proxies
	FailShare      float64 // share of connections that fail (no answer, refused)
	CDNBurstEvery  time.Duration
	CDNBurstFlows  int
	BackupPPS      float64 // packets per second of the backup stream, 0: none
	Snaplen        int
	Attacks        []Attack
}

// AttackKind is the kind of an injected attack.
type AttackKind int

const (
	// TCPVerticalScan: SYNs to Count ports of Victim; closed ports
	// answer RST, the open ones SYN-ACK (then the attacker resets).
	TCPVerticalScan AttackKind = iota
	// TCPSweep: SYNs to port Port of Count addresses from Victim on;
	// most do not exist, a few refuse.
	TCPSweep
	// UDPVerticalScan: UDP probes to Count ports of Victim, each answered
	// by an ICMP port unreachable.
	UDPVerticalScan
	// UDPSweep: UDP probes to port Port of Count addresses, unanswered.
	UDPSweep
	// SYNFlood: Count SYNs from spoofed random sources to Victim:Port;
	// the victim answers each with a SYN-ACK that is never acknowledged.
	SYNFlood
	// DNSAmplification: Count large DNS responses from many open
	// resolvers (source port 53) to Victim, which never asked.
	DNSAmplification
)

// Attack is one injected attack: Count packets at Rate per second from
// At (an offset into the capture).
type Attack struct {
	Kind     AttackKind
	At       time.Duration
	Rate     float64
	Count    int
	Attacker netip.Addr // unused by the spoofed SYNFlood and DNSAmplification
	Victim   netip.Addr // the first address of a sweep
	Port     uint16
}

// BenignEnterprise is a 5 000-new-flows/s enterprise edge with no attack.
func BenignEnterprise(seed int64, d time.Duration) EnterpriseConfig {
	return EnterpriseConfig{Seed: seed, Start: time.Date(2026, 2, 2, 1, 0, 0, 0, time.UTC), Duration: d,
		FlowsPerSecond: 5000, Clients: 4000, Servers: 600, Internet: 40000, Proxies: 8, ProxyShare: 0.2,
		FailShare: 0.015, CDNBurstEvery: 37 * time.Second, CDNBurstFlows: 400, BackupPPS: 2000, Snaplen: 96}
}

// EnterpriseAttacks are one attack of every kind, 30 seconds apart from
// 31s on, each over within its 10-second interval: the last ends by 3m11s.
func EnterpriseAttacks() []Attack {
	a := netip.MustParseAddr
	return []Attack{
		{Kind: TCPVerticalScan, At: 31 * time.Second, Rate: 200, Count: 1000, Attacker: a("10.1.77.7"), Victim: a("10.2.0.5")},
		{Kind: TCPSweep, At: 61 * time.Second, Rate: 100, Count: 800, Attacker: a("10.1.66.6"), Victim: a("10.2.0.0"), Port: 445},
		{Kind: UDPVerticalScan, At: 91 * time.Second, Rate: 14, Count: 120, Attacker: a("192.0.2.66"), Victim: a("10.2.0.7")},
		{Kind: UDPSweep, At: 121 * time.Second, Rate: 60, Count: 480, Attacker: a("10.1.55.5"), Victim: a("10.2.4.0"), Port: 161},
		{Kind: SYNFlood, At: 151 * time.Second, Rate: 1500, Count: 12000, Victim: a("10.2.0.3"), Port: 443},
		{Kind: DNSAmplification, At: 181 * time.Second, Rate: 2000, Count: 16000, Victim: a("10.1.3.3")},
	}
}

// event is one scheduled packet, or (kind > 0) a process that emits
// packets and reschedules itself.
type event struct {
	t    float64 // seconds from Start
	kind int
	n    int // attack: probes sent; backup: packets sent
	idx  int // attack index
	f    Frame
}

const (
	evPacket = iota
	evArrival
	evBackup
	evAttack
	evCDN
)

type eventHeap []event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].t < h[j].t }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Enterprise produces the packets of an EnterpriseConfig in time order.
type Enterprise struct {
	cfg    EnterpriseConfig
	rng    *rand.Rand
	srvZ   *rand.Zipf
	netZ   *rand.Zipf
	q      eventHeap
	end    float64
	Frames int // packets produced
}

// NewEnterprise starts the traffic.
func NewEnterprise(cfg EnterpriseConfig) *Enterprise {
	rng := rand.New(rand.NewSource(cfg.Seed))
	g := &Enterprise{cfg: cfg, rng: rng, end: cfg.Duration.Seconds(),
		srvZ: rand.NewZipf(rng, 1.2, 1, uint64(max(cfg.Servers, 2)-1)),
		netZ: rand.NewZipf(rng, 1.05, 1, uint64(max(cfg.Internet, 2)-1))}
	heap.Push(&g.q, event{t: 0, kind: evArrival})
	if cfg.BackupPPS > 0 {
		heap.Push(&g.q, event{t: 0.001, kind: evBackup})
	}
	if cfg.CDNBurstEvery > 0 {
		heap.Push(&g.q, event{t: cfg.CDNBurstEvery.Seconds() * rng.Float64(), kind: evCDN})
	}
	for i, a := range cfg.Attacks {
		heap.Push(&g.q, event{t: a.At.Seconds(), kind: evAttack, idx: i})
	}
	return g
}

// Next appends the next packet to buf; ok is false when the capture is
// over.
func (g *Enterprise) Next(buf []byte) (out []byte, ts time.Time, wireLen int, ok bool) {
	for g.q.Len() > 0 {
		e := heap.Pop(&g.q).(event)
		if e.t >= g.end {
			continue // drop what falls after the end; the queue drains
		}
		switch e.kind {
		case evArrival:
			g.benignFlow(e.t)
			heap.Push(&g.q, event{t: e.t + g.rng.ExpFloat64()/g.cfg.FlowsPerSecond, kind: evArrival})
			continue
		case evCDN:
			g.cdnBurst(e.t)
			heap.Push(&g.q, event{t: e.t + g.cfg.CDNBurstEvery.Seconds()*(0.5+g.rng.Float64()), kind: evCDN})
			continue
		case evBackup:
			g.backup(&e)
			continue
		case evAttack:
			g.attack(&e)
			continue
		}
		e.f.Snaplen = g.cfg.Snaplen
		out, wireLen = Append(buf, &e.f)
		g.Frames++
		return out, g.cfg.Start.Add(time.Duration(e.t * 1e9)).Truncate(time.Microsecond), wireLen, true
	}
	return buf, ts, 0, false
}

func (g *Enterprise) emit(t float64, f Frame) { heap.Push(&g.q, event{t: t, f: f}) }

func (g *Enterprise) client() netip.Addr {
	n := 1 + g.rng.Intn(g.cfg.Clients)
	return netip.AddrFrom4([4]byte{10, 1, byte(n >> 8 & 0xef), byte(n)}) // 10.1.240+ are proxies
}

func (g *Enterprise) proxy() netip.Addr {
	return netip.AddrFrom4([4]byte{10, 1, 250, byte(1 + g.rng.Intn(max(g.cfg.Proxies, 1)))})
}

func (g *Enterprise) server() netip.Addr {
	n := int(g.srvZ.Uint64()) + 16 // 10.2.0.0-15 are attack targets only
	return netip.AddrFrom4([4]byte{10, 2, byte(n >> 8), byte(n)})
}

func (g *Enterprise) internet() netip.Addr {
	n := uint32(g.netZ.Uint64())*2654435761 + 0x2d000000 // spread, deterministic
	b := [4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	b[0] = 20 + b[0]%150 // public-looking, never 10/8 or 192.0.2/24
	return netip.AddrFrom4(b)
}

func (g *Enterprise) ephemeral() uint16 { return uint16(32768 + g.rng.Intn(28000)) }

// rtt is a round trip in seconds: internal hosts answer fast, internet
// hosts slower.
func (g *Enterprise) rtt(internal bool) float64 {
	if internal {
		return 0.0002 + 0.002*g.rng.Float64()
	}
	return 0.005 + 0.15*g.rng.Float64()*g.rng.Float64()
}

func (g *Enterprise) benignFlow(t float64) {
	r := g.rng
	var cli netip.Addr
	if r.Float64() < g.cfg.ProxyShare {
		cli = g.proxy()
	} else {
		cli = g.client()
	}
	switch x := r.Float64(); {
	case x < 0.40: // HTTPS or HTTP to the internet
		port := uint16(443)
		if r.Intn(8) == 0 {
			port = []uint16{80, 8443, 993, 465, 22, 5222, 3478, 8080, 9443, 4443, 1935, 6443}[r.Intn(12)]
		}
		g.tcpFlow(t, cli, g.internet(), port, false)
	case x < 0.52: // internal services
		g.tcpFlow(t, cli, g.server(), []uint16{443, 445, 22, 3389, 8080, 389, 88, 135, 1433, 5432}[r.Intn(10)], true)
	case x < 0.77: // DNS to the resolvers
		g.udpFlow(t, cli, netip.AddrFrom4([4]byte{10, 3, 0, byte(53 + r.Intn(2))}), 53, 1, 60, 180, true)
	case x < 0.93: // QUIC
		g.udpFlow(t, cli, g.internet(), 443, 2+r.Intn(8), 1200, 1250, false)
	case x < 0.98: // NTP and other UDP
		g.udpFlow(t, cli, g.internet(), []uint16{123, 123, 3478, 500, 4500}[r.Intn(5)], 1, 48, 48, false)
	default: // ping
		dst := g.server()
		rt := g.rtt(true)
		for i := range 1 + r.Intn(4) {
			at := t + float64(i)
			g.emit(at, Frame{Src: cli, Dst: dst, Proto: 1, ICMPType: 8, Payload: 56})
			g.emit(at+rt, Frame{Src: dst, Dst: cli, Proto: 1, ICMPType: 0, Payload: 56})
		}
	}
}

// tcpFlow is a connection: handshake, a few exchanges, FIN both ways; a
// FailShare of them get no answer (SYN retried) or are refused.
func (g *Enterprise) tcpFlow(t float64, cli, srv netip.Addr, port uint16, internal bool) {
	r := g.rng
	cp := g.ephemeral()
	rt := g.rtt(internal)
	c2s := Frame{Src: cli, Dst: srv, Proto: 6, SrcPort: cp, DstPort: port}
	s2c := Frame{Src: srv, Dst: cli, Proto: 6, SrcPort: port, DstPort: cp}
	syn := c2s
	syn.TCPFlags = 0x02
	g.emit(t, syn)
	if r.Float64() < g.cfg.FailShare {
		if r.Intn(2) == 0 {
			g.emit(t+1, syn) // retried, never answered
			return
		}
		rst := s2c
		rst.TCPFlags = 0x14
		g.emit(t+rt, rst)
		return
	}
	f := s2c
	f.TCPFlags = 0x12
	g.emit(t+rt, f)
	f = c2s
	f.TCPFlags = 0x10
	g.emit(t+rt*1.01, f)
	at := t + rt*1.02
	for range 1 + int(math.Floor(-math.Log(1-r.Float64())*2)) {
		f = c2s
		f.TCPFlags, f.Payload = 0x18, 100+r.Intn(600)
		g.emit(at, f)
		f = s2c
		f.TCPFlags, f.Payload = 0x18, 200+r.Intn(1260)
		g.emit(at+rt, f)
		at += rt + 0.05*r.Float64()
	}
	f = c2s
	f.TCPFlags = 0x11
	g.emit(at, f)
	f = s2c
	f.TCPFlags = 0x11
	g.emit(at+rt, f)
	f = c2s
	f.TCPFlags = 0x10
	g.emit(at+rt*1.01, f)
}

// udpFlow is a request/response exchange, n rounds; a FailShare of them
// get no answer.
func (g *Enterprise) udpFlow(t float64, cli, srv netip.Addr, port uint16, n, lo, hi int, internal bool) {
	r := g.rng
	cp := g.ephemeral()
	rt := g.rtt(internal)
	fail := r.Float64() < g.cfg.FailShare
	for i := range n {
		at := t + float64(i)*rt*1.5
		g.emit(at, Frame{Src: cli, Dst: srv, Proto: 17, SrcPort: cp, DstPort: port, Payload: lo/2 + r.Intn(lo/2+1)})
		if !fail {
			g.emit(at+rt, Frame{Src: srv, Dst: cli, Proto: 17, SrcPort: port, DstPort: cp, Payload: lo + r.Intn(hi-lo+1)})
		}
	}
}

// cdnBurst is a page load: one client opens CDNBurstFlows connections to as
// many CDN addresses within a second, all answered.
func (g *Enterprise) cdnBurst(t float64) {
	cli := g.client()
	base := 151<<24 | 101<<16 | uint32(g.rng.Intn(4))<<8
	for i := range g.cfg.CDNBurstFlows {
		n := base + uint32(i)
		g.tcpFlow(t+g.rng.Float64(), cli, netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 443, false)
	}
}

// backup streams full-size segments from one host to the backup server
// all along, one ACK back per two.
func (g *Enterprise) backup(e *event) {
	cli, srv := netip.AddrFrom4([4]byte{10, 1, 0, 9}), netip.AddrFrom4([4]byte{10, 2, 0, 200})
	if e.n == 0 {
		g.emit(e.t, Frame{Src: cli, Dst: srv, Proto: 6, SrcPort: 50123, DstPort: 22, TCPFlags: 0x02})
		g.emit(e.t+0.0003, Frame{Src: srv, Dst: cli, Proto: 6, SrcPort: 22, DstPort: 50123, TCPFlags: 0x12})
		g.emit(e.t+0.0004, Frame{Src: cli, Dst: srv, Proto: 6, SrcPort: 50123, DstPort: 22, TCPFlags: 0x10})
	}
	g.emit(e.t+0.0005, Frame{Src: cli, Dst: srv, Proto: 6, SrcPort: 50123, DstPort: 22, TCPFlags: 0x18, Payload: 1448})
	if e.n%2 == 1 {
		g.emit(e.t+0.0008, Frame{Src: srv, Dst: cli, Proto: 6, SrcPort: 22, DstPort: 50123, TCPFlags: 0x10})
	}
	e.n++
	e.t += 1 / g.cfg.BackupPPS
	heap.Push(&g.q, *e)
}

func addAddr(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (g *Enterprise) attack(e *event) {
	a := &g.cfg.Attacks[e.idx]
	if e.n >= a.Count {
		return
	}
	r := g.rng
	t, i := e.t, e.n
	switch a.Kind {
	case TCPVerticalScan:
		port := uint16(1 + i)
		g.emit(t, Frame{Src: a.Attacker, Dst: a.Victim, Proto: 6, SrcPort: 61000, DstPort: port, TCPFlags: 0x02})
		if port == 22 || port == 80 || port == 443 {
			g.emit(t+0.0005, Frame{Src: a.Victim, Dst: a.Attacker, Proto: 6, SrcPort: port, DstPort: 61000, TCPFlags: 0x12})
			g.emit(t+0.0006, Frame{Src: a.Attacker, Dst: a.Victim, Proto: 6, SrcPort: 61000, DstPort: port, TCPFlags: 0x04})
		} else {
			g.emit(t+0.0005, Frame{Src: a.Victim, Dst: a.Attacker, Proto: 6, SrcPort: port, DstPort: 61000, TCPFlags: 0x14})
		}
	case TCPSweep:
		dst := addAddr(a.Victim, i)
		g.emit(t, Frame{Src: a.Attacker, Dst: dst, Proto: 6, SrcPort: 61001, DstPort: a.Port, TCPFlags: 0x02})
		if r.Intn(20) == 0 {
			g.emit(t+0.0005, Frame{Src: dst, Dst: a.Attacker, Proto: 6, SrcPort: a.Port, DstPort: 61001, TCPFlags: 0x14})
		}
	case UDPVerticalScan:
		port := uint16(1 + i)
		g.emit(t, Frame{Src: a.Attacker, Dst: a.Victim, Proto: 17, SrcPort: 61002, DstPort: port, Payload: 8})
		g.emit(t+0.02, Frame{Src: a.Victim, Dst: a.Attacker, Proto: 1, ICMPType: 3, ICMPCode: 3, Payload: 36})
	case UDPSweep:
		g.emit(t, Frame{Src: a.Attacker, Dst: addAddr(a.Victim, i), Proto: 17, SrcPort: 61003, DstPort: a.Port, Payload: 40})
	case SYNFlood:
		n := r.Uint32()
		src := netip.AddrFrom4([4]byte{byte(1 + n%200), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
		sp := uint16(1024 + r.Intn(64000))
		g.emit(t, Frame{Src: src, Dst: a.Victim, Proto: 6, SrcPort: sp, DstPort: a.Port, TCPFlags: 0x02})
		g.emit(t+0.0002, Frame{Src: a.Victim, Dst: src, Proto: 6, SrcPort: a.Port, DstPort: sp, TCPFlags: 0x12})
	case DNSAmplification:
		n := uint32(r.Intn(600))*2246822519 + 0x5b000000
		src := netip.AddrFrom4([4]byte{byte(30 + (n>>24)%120), byte(n >> 16), byte(n >> 8), byte(n)})
		g.emit(t, Frame{Src: src, Dst: a.Victim, Proto: 17, SrcPort: 53, DstPort: g.ephemeral(), Payload: 1400})
	}
	e.n++
	e.t += 1 / a.Rate
	heap.Push(&g.q, *e)
}
