package flow

import (
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// FeatureConfig sets how features are summarised per interval.
type FeatureConfig struct {
	Interval time.Duration // default 10s
	TopN     int           // entries reported per list; default 10
	Counters int           // Space-Saving counters per list; default 64
}

func (c *FeatureConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = 10 * time.Second
	}
	if c.TopN <= 0 {
		c.TopN = 10
	}
	if c.Counters < c.TopN {
		c.Counters = max(64, c.TopN)
	}
}

// Talker is a source ranked by bytes sent in the interval. Bytes and
// Packets are count-min estimates: never below the truth, and above it by
// more than Error (0.07% of the interval's bytes) with probability under
// 14%.
type Talker struct {
	Addr           netip.Addr
	Bytes, Packets uint64
	Error          uint64
}

// FanOut is a source ranked by the flows it initiated in the interval (the
// TopN heaviest, then up to TopN more with the most unanswered flows), with
// the distinct destinations and destination ports of those flows: a port
// scan shows as many ports on few addresses, a sweep as many addresses.
// Flows is a count-min estimate (never below the truth, above it by more
// than Error with probability under 14%). Distinct counts are HyperLogLog
// estimates (p=8: ±6.5% above 640, nearly exact below) over the flows since
// the source entered the top list, so a source that entered late is
// undercounted, never over.
//
// The rest is counted exactly from when the source entered the list (Seen
// flows): how many of them opened with a bare SYN, how many were answered
// (a completed handshake, a reply; see EvEstablished), the destination
// most of them went to (Target, with a Boyer-Moore majority vote: it is
// the majority whenever there is one) and the lowest and highest
// destination address (the range a sweep covered).
type FanOut struct {
	Src      netip.Addr
	Flows    uint64
	Error    uint64
	DstAddrs float64
	DstPorts float64

	Seen       uint64
	SYNs       uint64
	Answered   uint64
	Target     netip.Addr
	Port       uint16 // the destination port most flows went to (majority vote)
	DstLo      netip.Addr
	DstHi      netip.Addr
	SYNsAnswer uint64 // SYN-opened flows whose handshake completed
}

// Unanswered is how many of the Seen flows were not answered (yet: a flow
// answered in the next interval counts as answered there).
func (f *FanOut) Unanswered() uint64 { return f.Seen - min(f.Answered, f.Seen) }

// FanIn is a destination ranked by the flows opened towards it (the TopN
// heaviest, then up to TopN more with the most half-open and reflected
// flows), with the
// distinct sources of those flows and how many began with a bare SYN: a
// (D)DoS shows as many sources, a SYN flood as many SYNs. Flows and Error
// as in FanOut; Sources and SYNs count from when the destination entered
// the top list.
//
// Counted exactly from when the destination entered the list: SYNsAnswer,
// how many of the SYN-opened flows completed their handshake, Answered,
// how many flows were answered at all, and Source, the initiator most of
// them came from (a majority vote, as FanOut.Target).
type FanIn struct {
	Dst     netip.Addr
	Flows   uint64
	Error   uint64
	Sources float64
	SYNs    uint64

	Seen       uint64
	Answered   uint64
	SYNsAnswer uint64
	Source     netip.Addr
	Port       uint16 // the destination port most flows went to (majority vote)

	// Reflected flows came, unasked, from a UDP service port that answers
	// small requests with big responses (DNS, NTP, ...; ReflectPort is the
	// latest); ReflectedBytes are their first packets' bytes.
	Reflected      uint64
	ReflectedBytes uint64
	ReflectPort    uint16
}

// HalfOpen is how many of the SYNs did not complete their handshake in the
// interval.
func (f *FanIn) HalfOpen() uint64 { return f.SYNs - min(f.SYNsAnswer, f.SYNs) }

// Snapshot is the summary of one interval at one capture point: what the
// per-interval samples say, plus the evidence behind them for rules.
type Snapshot struct {
	Capture    string
	Start, End time.Time

	Active      int     // flows in the table at End
	HalfOpen    int     // TCP flows with a SYN from the initiator and no ACK yet
	NewFlows    uint64  // flows created in the interval
	Packets     uint64  // packets decoded in the interval
	Bytes       uint64  // their bytes on the wire
	DistinctSrc float64 // HyperLogLog, p=12: ±1.6% (1.04/64)
	DistinctDst float64

	TopTalkers []Talker
	FanOut     []FanOut
	FanIn      []FanIn

	// Cumulative counters of the capture point.
	Decode DecodeStats
	Table  TableStats
	Source SourceStats
}

// Seconds is the interval's length.
func (s *Snapshot) Seconds() float64 { return s.End.Sub(s.Start).Seconds() }

// Features accumulates one interval of per-packet and per-new-flow
// observations. Not safe for concurrent use.
type Features struct {
	cfg      FeatureConfig
	newFlows uint64
	packets  uint64
	bytes    uint64
	src, dst hll
	cm       *cmSketch    // bytes and packets per source
	talkers  *spaceSaving // top sources by count-min bytes; aux = packets
	outCM    *cmCount     // new flows per source
	inCM     *cmCount     // new flows per destination
	fanOut   *spaceSaving // top sources by count-min new flows; hllA = dst addrs, hllB = dst ports
	fanIn    *spaceSaving // top destinations by count-min new flows; hllA = sources, aux = SYNs
}

// NewFeatures makes an empty accumulator.
func NewFeatures(cfg FeatureConfig) *Features {
	cfg.defaults()
	return &Features{
		cfg:     cfg,
		src:     newHLL(12),
		dst:     newHLL(12),
		cm:      new(cmSketch),
		talkers: newSpaceSaving(cfg.Counters, 0, false),
		outCM:   new(cmCount),
		inCM:    new(cmCount),
		fanOut:  newSpaceSaving(cfg.Counters, 8, true),
		fanIn:   newSpaceSaving(cfg.Counters, 8, false),
	}
}

// Observe accounts one decoded packet; ev comes from Table.Observe.
func (f *Features) Observe(m *Meta, wireLen int, ev Event) {
	f.packets++
	f.bytes += uint64(wireLen)
	src := addrKeyOf(&m.Src, m.Family)
	sh := src.hash()
	eb, ep := f.cm.add(fmix64(sh), uint64(wireLen))
	if eb >= f.talkers.floor() {
		if c, ok := f.talkers.set(&src, sh, eb); ok {
			f.talkers.aux[c] = uint64(ep)
		}
	}
	if ev&(EvNew|EvEstablished) == 0 {
		return
	}
	// The initiator is the packet's source unless the packet came from the
	// responder (a reply, or a SYN-ACK whose SYN was missed).
	dst := addrKeyOf(&m.Dst, m.Family)
	dh := dst.hash()
	sport, dport := m.SrcPort, m.DstPort
	if ev&EvFromInitiator == 0 {
		src, dst, sh, dh, sport, dport = dst, src, dh, sh, dport, sport
	}
	if ev&EvNew == 0 {
		f.answered(&src, sh, &dst, dh, m.Proto == 6 && ev&EvFromInitiator != 0)
		return
	}
	syn := ev&EvSYN != 0
	f.newFlows++
	f.src.add(sh)
	f.dst.add(dh)
	if c, ok := f.fanOut.set(&src, sh, uint64(f.outCM.add(fmix64(sh)))); ok {
		f.fanOut.hllA[c].add(dh)
		f.fanOut.hllB[c].add(uint64(dport) | uint64(m.Proto)<<16)
		x := &f.fanOut.ext[c]
		x.flows++
		if syn {
			x.syns++
		}
		x.vote(&dst)
		x.votePort(dport)
	}
	if c, ok := f.fanIn.set(&dst, dh, uint64(f.inCM.add(fmix64(dh)))); ok {
		f.fanIn.hllA[c].add(sh)
		x := &f.fanIn.ext[c]
		x.flows++
		if syn {
			f.fanIn.aux[c]++
			x.syns++
		}
		x.vote(&src)
		x.votePort(dport)
		if m.Proto == 17 && reflector(sport) {
			x.refl++
			x.reflB += uint64(wireLen)
			x.reflPort = sport
		}
	}
	if ev&EvEstablished != 0 { // answered by its first packet: not TCP
		f.answered(&src, sh, &dst, dh, false)
	}
}

// reflector reports whether a UDP port is a service's that answers a small
// request with a big response, the ports reflection floods come from: chargen,
// DNS, NTP, SNMP, CLDAP, SSDP, memcached, WS-Discovery.
func reflector(port uint16) bool {
	switch port {
	case 19, 53, 123, 161, 389, 1900, 11211, 3702:
		return true
	}
	return false
}

// answered counts a flow of initiator src to dst that was answered; handshake
// says it began with a bare SYN and its handshake completed.
func (f *Features) answered(src *addrKey, sh uint64, dst *addrKey, dh uint64, handshake bool) {
	if c := f.fanOut.find(src, sh); c >= 0 {
		f.fanOut.ext[c].answered++
		if handshake {
			f.fanOut.ext[c].synAns++
		}
	}
	if c := f.fanIn.find(dst, dh); c >= 0 {
		f.fanIn.ext[c].answered++
		if handshake {
			f.fanIn.ext[c].synAns++
		}
	}
}

// Snapshot summarises the interval [start, end) and resets the accumulator.
func (f *Features) Snapshot(capture string, start, end time.Time, tab TableStats) Snapshot {
	s := Snapshot{
		Capture: capture, Start: start, End: end,
		Active: tab.Active, HalfOpen: tab.HalfOpen,
		NewFlows: f.newFlows, Packets: f.packets, Bytes: f.bytes,
		DistinctSrc: f.src.estimate(), DistinctDst: f.dst.estimate(),
		Table: tab,
	}
	if f.newFlows == 0 {
		s.DistinctSrc, s.DistinctDst = 0, 0
	}
	cmErr := uint64(float64(f.bytes) * math.E / cmWidth)
	for _, c := range f.talkers.top(f.cfg.TopN) {
		s.TopTalkers = append(s.TopTalkers, Talker{Addr: f.talkers.keys[c].Addr(),
			Bytes: f.talkers.count[c], Packets: f.talkers.aux[c], Error: cmErr})
	}
	flowErr := uint64(float64(f.newFlows) * math.E / cmWidth)
	// The heaviest sources by new flows, then the ones with the most
	// unanswered flows among the rest held: a scan of a hundred ports is
	// light next to a busy proxy, and must not fall off the list.
	for _, c := range f.fanOut.topBy(f.cfg.TopN, func(c int32) uint64 { x := &f.fanOut.ext[c]; return x.flows - min(x.answered, x.flows) }) {
		x := &f.fanOut.ext[c]
		s.FanOut = append(s.FanOut, FanOut{Src: f.fanOut.keys[c].Addr(), Flows: f.fanOut.count[c],
			// A flow has one destination: the flows seen bound the sketch.
			Error: flowErr, DstAddrs: min(f.fanOut.hllA[c].estimate(), float64(x.flows)),
			DstPorts: min(f.fanOut.hllB[c].estimate(), float64(x.flows)),
			Seen:     x.flows, SYNs: x.syns, Answered: x.answered, SYNsAnswer: x.synAns,
			Target: x.peer.Addr(), Port: x.port, DstLo: x.lo.Addr(), DstHi: x.hi.Addr()})
	}
	// Likewise destinations, then the most half-open or reflected.
	for _, c := range f.fanIn.topBy(f.cfg.TopN, func(c int32) uint64 {
		x := &f.fanIn.ext[c]
		return x.syns - min(x.synAns, x.syns) + x.refl
	}) {
		x := &f.fanIn.ext[c]
		s.FanIn = append(s.FanIn, FanIn{Dst: f.fanIn.keys[c].Addr(), Flows: f.fanIn.count[c],
			Error: flowErr, Sources: min(f.fanIn.hllA[c].estimate(), float64(x.flows)), SYNs: f.fanIn.aux[c],
			Seen: x.flows, Answered: x.answered, SYNsAnswer: x.synAns, Source: x.peer.Addr(), Port: x.port,
			Reflected: x.refl, ReflectedBytes: x.reflB, ReflectPort: x.reflPort})
	}
	f.newFlows, f.packets, f.bytes = 0, 0, 0
	f.src.reset()
	f.dst.reset()
	f.talkers.reset()
	f.cm.reset()
	*f.outCM, *f.inCM = cmCount{}, cmCount{}
	f.fanOut.reset()
	f.fanIn.reset()
	return s
}

// Metric names of the flow features.
const (
	MetricActive         = "flow_active"
	MetricNewPerSecond   = "flow_new_per_second"
	MetricDistinctSrc    = "flow_distinct_src"
	MetricDistinctDst    = "flow_distinct_dst"
	MetricBytesPerSecond = "flow_bytes_per_second"
	MetricPacketsPerSec  = "flow_packets_per_second"
	MetricTCPHalfOpen    = "flow_tcp_half_open"
	MetricTopTalkerBytes = "flow_top_talker_bytes_per_second" // labels src, rank
	MetricFanOutFlows    = "flow_src_new_flows"               // labels src
	MetricFanOutDstAddrs = "flow_src_distinct_dst"            // labels src
	MetricFanOutDstPorts = "flow_src_distinct_dst_ports"      // labels src
	MetricFanInFlows     = "flow_dst_new_flows"               // labels dst
	MetricFanInSources   = "flow_dst_distinct_src"            // labels dst
	MetricFanInSYNs      = "flow_dst_syn_flows"               // labels dst
	MetricDecodeErrors   = "flow_decode_errors_total"         // labels reason; counter
	MetricKernelDrops    = "flow_capture_kernel_drops_total"  // counter
	MetricTableEvictions = "flow_table_evictions_total"       // counter
	MetricFlowsExpired   = "flow_table_ended_total"           // labels reason; counter
	labelCapture         = "capture"
	labelSrc, labelDst   = "src", "dst"
	labelRank, labelWhy  = "rank", "reason"
)

// Samples renders the snapshot as samples of device, each labelled with the
// capture point, timestamped at the interval's end. Per-address series
// (top talkers, fan-out, fan-in) carry the address as a label: they are
// evidence for rules, bounded by TopN.
func (s *Snapshot) Samples(device string) []collector.Sample {
	secs := s.Seconds()
	if secs <= 0 {
		secs = 1
	}
	out := make([]collector.Sample, 0, 16+3*len(s.FanOut)+3*len(s.FanIn)+len(s.TopTalkers)+int(NumReasons))
	base := collector.NewLabels(labelCapture, s.Capture)
	add := func(metric string, v float64, kind collector.MetricKind, labels collector.Labels) {
		out = append(out, collector.Sample{Device: device, Metric: metric, Labels: labels, Value: v, Kind: kind, Time: s.End})
	}
	add(MetricActive, float64(s.Active), collector.Gauge, base)
	add(MetricNewPerSecond, float64(s.NewFlows)/secs, collector.Rate, base)
	add(MetricDistinctSrc, s.DistinctSrc, collector.Gauge, base)
	add(MetricDistinctDst, s.DistinctDst, collector.Gauge, base)
	add(MetricBytesPerSecond, float64(s.Bytes)/secs, collector.Rate, base)
	add(MetricPacketsPerSec, float64(s.Packets)/secs, collector.Rate, base)
	add(MetricTCPHalfOpen, float64(s.HalfOpen), collector.Gauge, base)
	for i, t := range s.TopTalkers {
		add(MetricTopTalkerBytes, float64(t.Bytes)/secs, collector.Rate,
			collector.NewLabels(labelCapture, s.Capture, labelSrc, t.Addr.String(), labelRank, strconv.Itoa(i+1)))
	}
	for _, f := range s.FanOut {
		l := collector.NewLabels(labelCapture, s.Capture, labelSrc, f.Src.String())
		add(MetricFanOutFlows, float64(f.Flows), collector.Gauge, l)
		add(MetricFanOutDstAddrs, f.DstAddrs, collector.Gauge, l)
		add(MetricFanOutDstPorts, f.DstPorts, collector.Gauge, l)
	}
	for _, f := range s.FanIn {
		l := collector.NewLabels(labelCapture, s.Capture, labelDst, f.Dst.String())
		add(MetricFanInFlows, float64(f.Flows), collector.Gauge, l)
		add(MetricFanInSources, f.Sources, collector.Gauge, l)
		add(MetricFanInSYNs, float64(f.SYNs), collector.Gauge, l)
	}
	for r := ReasonNone + 1; r < NumReasons; r++ {
		add(MetricDecodeErrors, float64(s.Decode.Bad[r]), collector.Counter,
			collector.NewLabels(labelCapture, s.Capture, labelWhy, r.String()))
	}
	add(MetricKernelDrops, float64(s.Source.KernelDrops), collector.Counter, base)
	add(MetricTableEvictions, float64(s.Table.Evicted), collector.Counter, base)
	for _, e := range []struct {
		why EndReason
		n   uint64
	}{{EndIdle, s.Table.EndedIdle}, {EndActive, s.Table.EndedActive}, {EndTCP, s.Table.EndedTCP}} {
		add(MetricFlowsExpired, float64(e.n), collector.Counter,
			collector.NewLabels(labelCapture, s.Capture, labelWhy, e.why.String()))
	}
	return out
}
