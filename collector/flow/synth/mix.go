package synth

import (
	"math"
	"math/rand"
	"net/netip"
	"time"
)

// MixConfig describes a seeded traffic mix: normal client/server flows
// towards Zipf-popular servers, plus an injected vertical port scan and a
// SYN flood. Addresses come from 198.18.0.0/15 and fd00::/8 only.
type MixConfig struct {
	Seed        int64
	Packets     int           // total packets to produce
	Start       time.Time     // timestamp of the first packet
	Duration    time.Duration // span of the capture
	Snaplen     int           // captured bytes per frame (wire length is kept)
	Concurrency int           // normal flows interleaved at any time
	Servers     int           // server pool, drawn with Zipf popularity
	IPv6        float64       // fraction of normal flows over IPv6
	VLAN        float64       // fraction of normal flows tagged 802.1Q
	ScanPorts   int           // ports probed by the scanner (SYN, RST back)
	FloodSYNs   int           // spoofed SYNs towards one victim
}

// BenchMix is the benchmark's mix: 4 million packets, about 660 000 flows.
func BenchMix() MixConfig {
	return MixConfig{Seed: 1, Packets: 4_000_000, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Duration: 400 * time.Second, Snaplen: 128, Concurrency: 2000, Servers: 16000,
		IPv6: 0.3, VLAN: 0.1, ScanPorts: 20000, FloodSYNs: 100000}
}

// SmallMix is a fixture-sized mix with the same ingredients.
func SmallMix() MixConfig {
	return MixConfig{Seed: 7, Packets: 1500, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Duration: 30 * time.Second, Snaplen: 96, Concurrency: 40, Servers: 50,
		IPv6: 0.3, VLAN: 0.1, ScanPorts: 150, FloodSYNs: 300}
}

// Scanner, ScanTarget and FloodVictim are the attack endpoints of a mix.
var (
	Scanner     = netip.MustParseAddr("198.18.100.100") // outside the server, client and flood ranges
	ScanTarget  = netip.MustParseAddr("198.18.0.1")
	FloodVictim = netip.MustParseAddr("198.18.0.2")
)

type flowState struct {
	f        Frame
	cli, srv netip.Addr
	cport    uint16
	sport    uint16
	step     int
	total    int
	vlans    []uint16
}

// Mix produces the packets of a MixConfig in timestamp order.
type Mix struct {
	cfg      MixConfig
	rng      *rand.Rand
	zipf     *rand.Zipf
	active   []flowState
	emitted  int
	ts       time.Time
	gap      float64 // mean inter-arrival, ns
	scanLeft int
	scanPort int
	rstDue   bool
	flood    int
	scanP    float64 // probability a step is a scan probe inside the scan window
	floodP   float64 // same for the flood
	vlanTags [4][]uint16
	attackF  Frame
}

// NewMix starts a mix.
func NewMix(cfg MixConfig) *Mix {
	rng := rand.New(rand.NewSource(cfg.Seed))
	m := &Mix{
		cfg:      cfg,
		rng:      rng,
		zipf:     rand.NewZipf(rng, 1.1, 1, uint64(max(cfg.Servers, 2)-1)),
		active:   make([]flowState, cfg.Concurrency),
		ts:       cfg.Start,
		gap:      float64(cfg.Duration) / float64(max(cfg.Packets, 1)),
		scanLeft: cfg.ScanPorts,
		flood:    cfg.FloodSYNs,
	}
	for i := range m.vlanTags {
		m.vlanTags[i] = []uint16{uint16(100 + i)}
	}
	// Attacks run inside windows of a tenth of the capture each, spread so
	// they end near the window's end.
	window := 0.1 * float64(cfg.Packets)
	m.scanP = min(1.1*float64(cfg.ScanPorts)/window, 1)
	m.floodP = min(1.1*float64(cfg.FloodSYNs)/window, 1)
	for i := range m.active {
		m.newFlow(&m.active[i])
	}
	return m
}

func (m *Mix) server(v6 bool) netip.Addr {
	n := int(m.zipf.Uint64()) + 3 // .1 and .2 are the attack targets
	if v6 {
		return netip.AddrFrom16([16]byte{0: 0xfd, 3: 2, 12: byte(n >> 24), 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)})
	}
	return netip.AddrFrom4([4]byte{198, 18, byte(n >> 8 & 0x3f), byte(n)})
}

func (m *Mix) client(v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		b[0], b[3] = 0xfd, 1
		v := m.rng.Uint64()
		for i := 8; i < 16; i++ {
			b[i] = byte(v >> (8 * (i - 8)))
		}
		return netip.AddrFrom16(b)
	}
	n := m.rng.Intn(1 << 15)
	return netip.AddrFrom4([4]byte{198, 18, byte(128 | n>>8), byte(n)})
}

func (m *Mix) geometric(mean float64) int {
	return int(math.Floor(math.Log(1-m.rng.Float64()) / math.Log(mean/(mean+1))))
}

func (m *Mix) newFlow(s *flowState) {
	v6 := m.rng.Float64() < m.cfg.IPv6
	*s = flowState{cli: m.client(v6), srv: m.server(v6), cport: uint16(1024 + m.rng.Intn(64511))}
	if m.rng.Float64() < m.cfg.VLAN {
		s.vlans = m.vlanTags[m.rng.Intn(len(m.vlanTags))]
	}
	switch r := m.rng.Float64(); {
	case r < 0.75:
		s.f.Proto = 6
		s.sport = []uint16{443, 80, 22, 8080, 993}[m.rng.Intn(5)]
		s.total = 6 + m.geometric(2.5)
	case r < 0.97:
		s.f.Proto = 17
		s.sport = []uint16{53, 123, 443, 5353}[m.rng.Intn(4)]
		s.total = 2 * (1 + m.geometric(0.5))
	default:
		s.f.Proto = 1
		if v6 {
			s.f.Proto = 58
		}
		s.total = 2 * (1 + m.geometric(1))
	}
}

// frameOf fills s.f for the flow's next packet.
func (m *Mix) frameOf(s *flowState) *Frame {
	f := &s.f
	fromClient := true
	f.TCPFlags, f.Payload, f.ICMPType = 0, 0, 0
	switch f.Proto {
	case 6:
		last := s.total - 1
		switch {
		case s.step == 0:
			f.TCPFlags = 0x02
		case s.step == 1:
			f.TCPFlags, fromClient = 0x12, false
		case s.step == 2:
			f.TCPFlags = 0x10
		case s.step == last-2:
			f.TCPFlags = 0x11
		case s.step == last-1:
			f.TCPFlags, fromClient = 0x11, false
		case s.step == last:
			f.TCPFlags = 0x10
		default:
			fromClient = s.step%3 == 0 // mostly server to client
			f.TCPFlags = 0x18
			if m.rng.Intn(2) == 0 {
				f.Payload = 1460
			} else {
				f.Payload = 100 + m.rng.Intn(400)
			}
		}
	case 17:
		fromClient = s.step%2 == 0
		f.Payload = 40 + m.rng.Intn(472)
	default:
		fromClient = s.step%2 == 0
		f.Payload = 56
		switch {
		case f.Proto == 1 && fromClient:
			f.ICMPType = 8
		case f.Proto == 1:
			f.ICMPType = 0
		case fromClient:
			f.ICMPType = 128
		default:
			f.ICMPType = 129
		}
	}
	if fromClient {
		f.Src, f.Dst, f.SrcPort, f.DstPort = s.cli, s.srv, s.cport, s.sport
	} else {
		f.Src, f.Dst, f.SrcPort, f.DstPort = s.srv, s.cli, s.sport, s.cport
	}
	f.VLANs = s.vlans
	f.Snaplen = m.cfg.Snaplen
	return f
}

// Next appends the next packet to buf. ok is false when the mix is done.
func (m *Mix) Next(buf []byte) (out []byte, ts time.Time, wireLen int, ok bool) {
	if m.emitted >= m.cfg.Packets {
		return buf, ts, 0, false
	}
	m.emitted++
	m.ts = m.ts.Add(time.Duration(m.rng.ExpFloat64() * m.gap))
	ts = m.ts.Truncate(time.Microsecond) // pcap and pcapng carry the same time
	frac := float64(m.emitted) / float64(m.cfg.Packets)
	f := m.attackPacket(frac)
	if f == nil {
		i := m.rng.Intn(len(m.active))
		s := &m.active[i]
		f = m.frameOf(s)
		s.step++
		if s.step >= s.total {
			out, wireLen = Append(buf, f)
			m.newFlow(s)
			return out, ts, wireLen, true
		}
	}
	out, wireLen = Append(buf, f)
	return out, ts, wireLen, true
}

// attackPacket returns the next scan or flood packet when inside the scan
// window (30-40% of the capture) or the flood window (60-70%).
func (m *Mix) attackPacket(frac float64) *Frame {
	f := &m.attackF
	*f = Frame{Proto: 6, Snaplen: m.cfg.Snaplen}
	switch {
	case m.rstDue:
		m.rstDue = false
		f.Src, f.Dst, f.SrcPort, f.DstPort, f.TCPFlags = ScanTarget, Scanner, uint16(m.scanPort), 41000, 0x14
		return f
	case frac >= 0.3 && m.scanLeft > 0 && (frac >= 0.4 || m.rng.Float64() < m.scanP):
		m.scanLeft--
		m.scanPort = m.cfg.ScanPorts - m.scanLeft
		m.rstDue = true
		f.Src, f.Dst, f.SrcPort, f.DstPort, f.TCPFlags = Scanner, ScanTarget, 41000, uint16(m.scanPort), 0x02
		return f
	case frac >= 0.6 && m.flood > 0 && (frac >= 0.7 || m.rng.Float64() < m.floodP):
		m.flood--
		n := m.rng.Intn(1 << 16)
		f.Src = netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n)})
		f.Dst, f.SrcPort, f.DstPort, f.TCPFlags = FloodVictim, uint16(1024+m.rng.Intn(64511)), 80, 0x02
		return f
	}
	return nil
}
