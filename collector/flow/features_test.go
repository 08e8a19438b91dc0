package flow

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
)

func within(got, want, rel float64) bool { return math.Abs(got-want) <= rel*want }

func TestFeaturesScanFloodTalkers(t *testing.T) {
	tab := NewTable(TableConfig{})
	f := NewFeatures(FeatureConfig{TopN: 5})
	ts := 100 * sec
	feed := func(m Meta, n int) {
		ts += 1e6
		f.Observe(&m, n, tab.Observe(&m, ts, n))
	}
	scanner, victim, server := byte(66), byte(10), byte(20)
	for p := range 500 { // vertical scan
		feed(meta4(scanner, victim, 50000, uint16(1+p), 6, 0x02), 60)
	}
	for i := range 2000 { // SYN flood from spoofed sources
		m := meta4(0, server, uint16(1024+i), 80, 6, 0x02)
		m.Src = [16]byte{198, 19, byte(i >> 8), byte(i)}
		feed(m, 60)
	}
	for range 300 { // one heavy talker, one flow
		feed(meta4(30, server, 443, 40000, 17, 0), 1400)
	}
	s := f.Snapshot("eth0", time.Unix(100, 0), time.Unix(110, 0), tab.Stats())

	if s.NewFlows != 2501 || s.Packets != 2800 || s.HalfOpen != 2500 || s.Active != 2501 {
		t.Fatalf("totals %+v", s)
	}
	if !within(s.DistinctSrc, 2002, 0.05) || !within(s.DistinctDst, 2, 0.05) {
		t.Errorf("distinct src %.0f (want 2002), dst %.0f (want 2)", s.DistinctSrc, s.DistinctDst)
	}
	top := s.TopTalkers[0]
	if top.Addr != netip.MustParseAddr("198.18.0.30") || top.Bytes < 300*1400 || top.Bytes-top.Error > 300*1400 {
		t.Errorf("top talker %+v", top)
	}
	fo := s.FanOut[0]
	if fo.Src != netip.MustParseAddr("198.18.0.66") || fo.Flows != 500 || !within(fo.DstPorts, 500, 0.05) || !within(fo.DstAddrs, 1, 0.01) {
		t.Errorf("fan-out %+v", fo)
	}
	fi := s.FanIn[0]
	if fi.Dst != netip.MustParseAddr("198.18.0.20") || fi.SYNs != 2000 || !within(fi.Sources, 2001, 0.2) {
		t.Errorf("fan-in %+v", fi)
	}
	samples := s.Samples("edge1")
	get := func(metric string, labels ...string) float64 {
		for _, x := range samples {
			if x.Metric != metric || x.Device != "edge1" || !x.Time.Equal(time.Unix(110, 0)) {
				continue
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && x.Labels.Get(labels[i]) == labels[i+1]
			}
			if match {
				return x.Value
			}
		}
		t.Fatalf("no sample %s %v", metric, labels)
		return 0
	}
	if v := get(MetricNewPerSecond, "capture", "eth0"); v != 250.1 {
		t.Errorf("%s = %v", MetricNewPerSecond, v)
	}
	if v := get(MetricTCPHalfOpen); v != 2500 {
		t.Errorf("%s = %v", MetricTCPHalfOpen, v)
	}
	if v := get(MetricFanOutDstPorts, "src", "198.18.0.66"); !within(v, 500, 0.05) {
		t.Errorf("%s = %v", MetricFanOutDstPorts, v)
	}
	if v := get(MetricFanInSYNs, "dst", "198.18.0.20"); v != 2000 {
		t.Errorf("%s = %v", MetricFanInSYNs, v)
	}
	if v := get(MetricTopTalkerBytes, "rank", "1"); v != float64(top.Bytes)/10 {
		t.Errorf("%s = %v", MetricTopTalkerBytes, v)
	}
	// The accumulator starts afresh.
	if s2 := f.Snapshot("eth0", time.Unix(110, 0), time.Unix(120, 0), tab.Stats()); s2.NewFlows != 0 || len(s2.TopTalkers) != 0 || s2.DistinctSrc != 0 {
		t.Errorf("second interval not empty: %+v", s2)
	}
	var _ collector.Sample
}

func TestHLLError(t *testing.T) {
	h := newHLL(12)
	for _, n := range []int{10, 1000, 100000} {
		h.reset()
		for i := range n {
			h.add(mix(uint64(i)^0x1234, 0x9e3779b97f4a7c15))
		}
		if e := h.estimate(); !within(e, float64(n), 0.05) {
			t.Errorf("n=%d estimate %.0f", n, e)
		}
	}
}

func TestSpaceSavingKeepsHeavyHitters(t *testing.T) {
	s := newSpaceSaving(16, 0, false)
	var k addrKey
	// Heavy keys 1..4 interleaved with 5000 one-off keys.
	for i := range 5000 {
		k = addrKey{0: byte(i), 1: byte(i >> 8), 2: 1}
		s.add(&k, k.hash(), 1)
		h := addrKey{15: byte(1 + i%4)}
		s.add(&h, h.hash(), 10)
	}
	top := s.top(4)
	for _, c := range top {
		key := s.keys[c]
		if key[15] < 1 || key[15] > 4 || key[2] != 0 {
			t.Fatalf("top holds %v", key)
		}
		if s.count[c]-s.err[c] > 12500 || s.count[c] < 12500 {
			t.Errorf("key %d count %d err %d, true 12500", key[15], s.count[c], s.err[c])
		}
	}
}

// Distinct counts are exact while small (a sketch of 256 registers read
// 93 for 101 ports) and the sketch's estimate past the exact limit.
func TestDistinctExactThenSketch(t *testing.T) {
	d := newDistinct(8)
	for i := range 1000 {
		d.add(uint64(i) | 17<<16)
		switch n := i + 1; {
		case n <= distinctExact:
			if got := d.estimate(); got != float64(n) {
				t.Fatalf("after %d values: %v", n, got)
			}
		case n == 1000:
			if got := d.estimate(); !within(got, 1000, 0.15) {
				t.Errorf("after 1000 values: %v", got)
			}
		default:
			if got := d.estimate(); got <= distinctExact {
				t.Fatalf("after %d values: %v, below the exact limit", n, got)
			}
		}
	}
	d.add(5 | 17<<16) // a repeat
	d.reset()
	d.add(1)
	d.add(1)
	if got := d.estimate(); got != 1 {
		t.Errorf("after reset: %v", got)
	}
}

// Which flows are answered: a completed handshake (even seen one way), a
// UDP reply; not a refused SYN, a spoofed SYN whose SYN-ACK is never
// acknowledged, or a UDP probe without reply.
func TestTableAnsweredEvents(t *testing.T) {
	tab := NewTable(TableConfig{})
	ts := 10 * sec
	ev := func(m Meta) Event { ts += 1e6; return tab.Observe(&m, ts, 60) }
	if e := ev(meta4(1, 2, 40000, 80, 6, 0x02)); e != EvNew|EvFromInitiator|EvSYN {
		t.Errorf("SYN: %b", e)
	}
	if e := ev(meta4(2, 1, 80, 40000, 6, 0x12)); e != 0 {
		t.Errorf("SYN-ACK: %b", e)
	}
	if e := ev(meta4(1, 2, 40000, 80, 6, 0x10)); e != EvFromInitiator|EvEstablished {
		t.Errorf("ACK: %b", e)
	}
	if e := ev(meta4(2, 1, 80, 40000, 6, 0x18)); e != 0 {
		t.Errorf("data after the handshake: %b", e)
	}
	ev(meta4(3, 2, 40001, 22, 6, 0x02))
	if e := ev(meta4(2, 3, 22, 40001, 6, 0x14)); e&EvEstablished != 0 {
		t.Errorf("refused: %b", e)
	}
	ev(meta4(4, 2, 40002, 443, 6, 0x02)) // spoofed: SYN-ACK, never an ACK
	if e := ev(meta4(2, 4, 443, 40002, 6, 0x12)); e&EvEstablished != 0 {
		t.Errorf("SYN-ACK to a spoofed SYN: %b", e)
	}
	ev(meta4(5, 2, 5353, 53, 17, 0))
	if e := ev(meta4(2, 5, 53, 5353, 17, 0)); e != EvEstablished {
		t.Errorf("DNS answer: %b", e)
	}
	if e := ev(meta4(2, 5, 53, 5353, 17, 0)); e != 0 {
		t.Errorf("second answer: %b", e)
	}
	if e := ev(meta4(6, 2, 5000, 161, 17, 0)); e != EvNew|EvFromInitiator {
		t.Errorf("UDP probe: %b", e)
	}
}
