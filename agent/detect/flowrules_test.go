package detect

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/netaiops/netaiops/collector/flow"
	"github.com/netaiops/netaiops/collector/flow/synth"
)

const capDev = "edge-1:eth1"

// snap is interval i (10s, ending at at(i+1)) of capture point eth1.
func snap(i int, mod func(*flow.Snapshot)) *flow.Snapshot {
	s := &flow.Snapshot{Capture: "eth1", Start: at(i), End: at(i + 1), Active: 50, NewFlows: 20, Packets: 1000, Bytes: 500000}
	if mod != nil {
		mod(s)
	}
	return s
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// find returns the changes of kind and object among cs.
func find(cs []Change, kind, object string) []Change {
	var out []Change
	for _, c := range cs {
		if c.Issue.Kind == kind && c.Issue.Object == object {
			out = append(out, c)
		}
	}
	return out
}

func onlyKinds(t *testing.T, cs []Change, kinds ...string) {
	t.Helper()
	for _, c := range cs {
		if !contains(kinds, c.Issue.Kind) {
			t.Errorf("unexpected change %s", describe(c))
		}
	}
}

// The committed fixture (netaiops-pcapgen -preset small) replayed through
// a real meter: the scanner raises port_scan, the flood's victim syn_flood,
// and the scanned host, which also got many SYNs, no syn_flood.
func TestFlowRulesOnFixture(t *testing.T) {
	src, err := flow.OpenFile("../../testdata/flow/mixed-small.pcap", flow.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	e := New("edge-1", Options{})
	const dev = "edge-1:mixed-small.pcap"
	var all []Change
	var last time.Time
	m := flow.NewMeter(flow.MeterConfig{Name: "mixed-small.pcap"}, src.LinkType(), slog.New(slog.DiscardHandler), func(s *flow.Snapshot) {
		all = append(all, e.ObserveFlows(dev, s)...)
		last = s.End
	})
	if err := m.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	all = append(all, e.EndCapture(dev, last)...)
	onlyKinds(t, all, KindPortScan, KindSYNFlood)

	scan := find(all, KindPortScan, synth.Scanner.String())
	if len(scan) != 2 || scan[0].Type != Opened || scan[1].Type != Resolved {
		t.Fatalf("port_scan changes: %v", scan)
	}
	a := scan[0].Issue.Attributes
	ports, _ := strconv.ParseFloat(a["dst_ports"], 64)
	if scan[0].Issue.Device != dev || ports < 100 || a["dst_addrs"] != "1.00" || a["shape"] != "vertical" || a["threshold_dst_ports"] != "100" ||
		a["src"] != synth.Scanner.String() || a["capture"] != "mixed-small.pcap" || a["interval"] != "10s" || a["top_sources"] == "" {
		t.Errorf("port_scan evidence %v", a)
	}
	if r := scan[1].Issue.Attributes["resolution"]; r != "capture ended" {
		t.Errorf("port_scan resolution %q", r)
	}

	flood := find(all, KindSYNFlood, synth.FloodVictim.String())
	if len(flood) != 2 || flood[0].Type != Opened || flood[1].Type != Resolved {
		t.Fatalf("syn_flood changes: %v", flood)
	}
	f := flood[0].Issue
	syns, _ := strconv.Atoi(f.Attributes["syns"])
	sources, _ := strconv.ParseFloat(f.Attributes["sources"], 64)
	halfOpen, _ := strconv.Atoi(f.Attributes["half_open"])
	if f.Severity != SeverityMajor || syns < 100 || sources < 100 || halfOpen < 100 || f.Attributes["threshold_syns"] != "100" {
		t.Errorf("syn_flood %s evidence %v", f.Severity, f.Attributes)
	}
	if c := find(all, KindSYNFlood, synth.ScanTarget.String()); len(c) != 0 {
		t.Errorf("the scanned host got syn_flood: %v", c)
	}
	if len(e.Open()) != 0 {
		t.Errorf("open after the capture ended: %v", e.Open())
	}
}

func TestPortScanSweepAndKeepFiring(t *testing.T) {
	e := New("edge-1", Options{Flows: FlowOptions{PortScan: PortScanOptions{DstPorts: 50, DstAddrs: 60}}})
	sweeper := addr("10.0.0.66")
	sweep := func(addrs float64) func(*flow.Snapshot) {
		return func(s *flow.Snapshot) {
			s.FanOut = []flow.FanOut{{Src: sweeper, Flows: uint64(addrs), DstAddrs: addrs, DstPorts: 1, Seen: uint64(addrs), Answered: 2},
				{Src: addr("10.0.0.7"), Flows: 3, DstAddrs: 2, DstPorts: 2, Seen: 3, Answered: 3}}
		}
	}
	if c := e.ObserveFlows(capDev, snap(0, sweep(59))); len(c) != 0 {
		t.Fatalf("below the threshold: %v", c)
	}
	c := e.ObserveFlows(capDev, snap(1, sweep(70)))
	if len(c) != 1 || c[0].Type != Opened || c[0].Issue.Kind != KindPortScan || c[0].Issue.Object != "10.0.0.66" ||
		c[0].Issue.Device != capDev || c[0].Issue.Severity != SeverityWarning {
		t.Fatalf("changes %v", c)
	}
	if a := c[0].Issue.Attributes; a["shape"] != "sweep" || a["dst_addrs"] != "70.0" || a["threshold_dst_addrs"] != "60" ||
		a["top_sources"] != "10.0.0.66 (70 flows, 1 ports, 70 addresses), 10.0.0.7 (3 flows, 2 ports, 2 addresses)" {
		t.Errorf("evidence %v", a)
	}
	// Ten times the threshold: more urgent, announced once.
	if c := e.ObserveFlows(capDev, snap(2, sweep(600))); len(c) != 1 || c[0].Type != Updated || c[0].Issue.Severity != SeverityMajor {
		t.Fatalf("escalation: %v", c)
	}
	if c := e.ObserveFlows(capDev, snap(3, sweep(600))); len(c) != 0 {
		t.Fatalf("same again: %v", c)
	}
	// Quiet intervals: open for keep_firing_for (1m) after the last scan.
	for i := 4; i < 9; i++ {
		if c := e.ObserveFlows(capDev, snap(i, nil)); len(c) != 0 {
			t.Fatalf("interval %d: %v", i, c)
		}
	}
	c = e.ObserveFlows(capDev, snap(9, nil))
	if len(c) != 1 || c[0].Type != Resolved || c[0].Issue.Attributes["resolution"] != "cleared" || c[0].Time != at(10) ||
		c[0].Issue.Attributes["since"] != formatTime(at(2)) || c[0].Issue.Attributes["last_seen_true"] != formatTime(at(4)) {
		t.Fatalf("resolution %v", c)
	}
	// An interval older than the newest one judged is ignored.
	if c := e.ObserveFlows(capDev, snap(1, sweep(700))); c != nil {
		t.Fatalf("old interval: %v", c)
	}
}

func TestSYNFlood(t *testing.T) {
	victim := addr("192.0.2.80")
	flood := func(syns uint64, halfOpen int, sources float64) func(*flow.Snapshot) {
		return func(s *flow.Snapshot) {
			s.HalfOpen = halfOpen
			s.FanIn = []flow.FanIn{{Dst: victim, Flows: syns, SYNs: syns, Sources: sources, Seen: syns,
				SYNsAnswer: syns - min(syns, uint64(halfOpen)), Port: 443}}
			s.FanOut = []flow.FanOut{{Src: addr("203.0.113.9"), Flows: 1, DstAddrs: 1, DstPorts: 1, Seen: 1, Target: victim}}
		}
	}
	e := New("edge-1", Options{})
	if c := e.ObserveFlows(capDev, snap(0, flood(500, 40, 400))); len(c) != 0 {
		t.Fatalf("SYNs answered (few half-open): %v", c)
	}
	if c := e.ObserveFlows(capDev, snap(1, flood(99, 300, 90))); len(c) != 0 {
		t.Fatalf("below the threshold: %v", c)
	}
	c := e.ObserveFlows(capDev, snap(2, flood(2000, 2500, 1900)))
	if len(c) != 1 || c[0].Issue.Kind != KindSYNFlood || c[0].Issue.Object != "192.0.2.80" || c[0].Issue.Severity != SeverityCritical {
		t.Fatalf("changes %v", c)
	}
	if a := c[0].Issue.Attributes; a["syns"] != "2000" || a["syns_per_second"] != "200" || a["half_open"] != "2000" ||
		a["sources"] != "1900" || a["threshold_half_open"] != "100" || a["dst_port"] != "443" ||
		a["top_sources"] != "none above one flow (1900 distinct, likely spoofed)" {
		t.Errorf("evidence %v", a)
	}

	// One source probing many ports of the destination is a scan, not a flood.
	e = New("edge-1", Options{Flows: FlowOptions{SYNFlood: SYNFloodOptions{HalfOpen: -1}}})
	scan := func(s *flow.Snapshot) {
		s.FanIn = []flow.FanIn{{Dst: victim, Flows: 300, SYNs: 300, Sources: 1, Seen: 300}}
		s.FanOut = []flow.FanOut{{Src: addr("203.0.113.9"), Flows: 300, DstAddrs: 1, DstPorts: 290, Seen: 300, SYNs: 300, Target: victim}}
	}
	c = e.ObserveFlows(capDev, snap(0, scan))
	onlyKinds(t, c, KindPortScan)
	if len(c) != 1 {
		t.Fatalf("scan: %v", c)
	}
	// One source flooding one port with SYNs it never completes is a
	// flood (no half-open minimum here; half of them unanswered is).
	c = e.ObserveFlows(capDev, snap(1, flood(300, 300, 1)))
	if len(find(c, KindSYNFlood, "192.0.2.80")) != 1 {
		t.Fatalf("single-source flood: %v", c)
	}
}

func TestHighFlowCountThresholds(t *testing.T) {
	e := New("edge-1", Options{Flows: FlowOptions{HighFlowCount: HighFlowCountOptions{ActiveFlows: 1000, NewFlowsPerSecond: 50, NoAnomaly: true}}})
	if c := e.ObserveFlows(capDev, snap(0, func(s *flow.Snapshot) { s.Active, s.NewFlows = 999, 499 })); len(c) != 0 {
		t.Fatalf("below: %v", c)
	}
	c := e.ObserveFlows(capDev, snap(1, func(s *flow.Snapshot) {
		s.Active, s.NewFlows, s.DistinctSrc, s.DistinctDst = 1500, 800, 300, 40
		s.FanOut = []flow.FanOut{{Src: addr("10.1.1.1"), Flows: 100, DstAddrs: 30, DstPorts: 2}}
	}))
	if len(c) != 1 || c[0].Issue.Kind != KindHighFlowCount || c[0].Issue.Object != "" || c[0].Issue.Severity != SeverityWarning {
		t.Fatalf("changes %v", c)
	}
	a := c[0].Issue.Attributes
	if a["reason"] != "active_flows,new_flows_per_second" || a["active_flows"] != "1500" || a["new_flows_per_second"] != "80.0" ||
		a["distinct_src"] != "300" || a["threshold_active_flows"] != "1000" || a["top_sources"] != "10.1.1.1 (100 flows, 2 ports, 30 addresses)" {
		t.Errorf("evidence %v", a)
	}
	if _, ok := a["score"]; ok {
		t.Errorf("anomaly evidence with the anomaly off: %v", a)
	}
}

// noisy is a baseline interval i of a capture point with about 2000
// active flows and 1.25 MB/s.
func noisy(r *rand.Rand) func(*flow.Snapshot) {
	return func(s *flow.Snapshot) {
		s.Active = 2000 + r.IntN(100)
		s.Bytes = uint64(12_500_000 + r.IntN(1_000_000))
		s.TopTalkers = []flow.Talker{{Addr: addr("10.9.9.9"), Bytes: s.Bytes / 3}}
	}
}

// Anomalies are judged against the capture point's own history: a calm
// baseline raises nothing (the model learns for 150 intervals), a jump
// in active flows opens high_flow_count and one in bytes traffic_spike.
func TestFlowAnomalies(t *testing.T) {
	e := New("edge-1", Options{})
	r := rand.New(rand.NewPCG(1, 2))
	i := 0
	for ; i < 5000; i++ {
		if c := e.ObserveFlows(capDev, snap(i, noisy(r))); len(c) != 0 {
			t.Fatalf("baseline interval %d: %v", i, c)
		}
	}
	c := e.ObserveFlows(capDev, snap(i, func(s *flow.Snapshot) {
		noisy(r)(s)
		s.Active = 30000
	}))
	onlyKinds(t, c, KindHighFlowCount)
	if len(c) != 1 || c[0].Issue.Attributes["reason"] != "anomaly" || c[0].Issue.Attributes["score"] == "" {
		t.Fatalf("active flows jump: %v", c)
	}
	i++
	c = e.ObserveFlows(capDev, snap(i, func(s *flow.Snapshot) {
		noisy(r)(s)
		s.Bytes *= 40
		s.TopTalkers[0].Bytes = s.Bytes / 2
	}))
	spike := find(c, KindTrafficSpike, "")
	if len(spike) != 1 || spike[0].Type != Opened {
		t.Fatalf("bytes jump: %v", c)
	}
	a := spike[0].Issue.Attributes
	exp, _ := strconv.ParseFloat(a["expected"], 64)
	rate, _ := strconv.ParseFloat(a["bytes_per_second"], 64)
	if exp < 1e6 || exp > 2e6 || rate < 4e7 || a["top_talkers"] == "" || a["score"] == "" {
		t.Errorf("evidence %v", a)
	}

	// The same spike under min_bytes_per_second raises nothing.
	e = New("edge-1", Options{Flows: FlowOptions{TrafficSpike: TrafficSpikeOptions{MinBytesPerSecond: 1e9}, HighFlowCount: HighFlowCountOptions{Disabled: true}}})
	r = rand.New(rand.NewPCG(1, 2))
	for i = 0; i < 5000; i++ {
		e.ObserveFlows(capDev, snap(i, noisy(r)))
	}
	if c := e.ObserveFlows(capDev, snap(i, func(s *flow.Snapshot) { noisy(r)(s); s.Bytes *= 40; s.Active = 30000 })); len(c) != 0 {
		t.Fatalf("below min_bytes_per_second, high_flow_count off: %v", c)
	}
}

func TestCaptureDrops(t *testing.T) {
	e := New("edge-1", Options{})
	drops := func(pkts, dropped uint64) func(*flow.Snapshot) {
		return func(s *flow.Snapshot) { s.Source.KernelPackets, s.Source.KernelDrops = pkts, dropped }
	}
	if c := e.ObserveFlows(capDev, snap(0, drops(10000, 50))); len(c) != 0 {
		t.Fatalf("50 drops: %v", c)
	}
	c := e.ObserveFlows(capDev, snap(1, drops(12000, 600)))
	if len(c) != 1 || c[0].Issue.Kind != KindCaptureDrops || c[0].Issue.Severity != SeverityMajor {
		t.Fatalf("changes %v", c)
	}
	if a := c[0].Issue.Attributes; a["drops"] != "550" || a["kernel_packets"] != "2000" || a["drop_percent"] != "27.5" ||
		a["drops_total"] != "600" || a["threshold_drops"] != "100" {
		t.Errorf("evidence %v", a)
	}
	for i := 2; i < 7; i++ {
		if c := e.ObserveFlows(capDev, snap(i, drops(12000+uint64(i)*1000, 600))); len(c) != 0 {
			t.Fatalf("interval %d: %v", i, c)
		}
	}
	if c := e.ObserveFlows(capDev, snap(7, drops(20000, 600))); len(c) != 1 || c[0].Type != Resolved || c[0].Time != at(8) {
		t.Fatalf("no drops for 1m: %v", c)
	}
	// A capture reopened starts its counters again: not a negative delta.
	if c := e.ObserveFlows(capDev, snap(9, drops(100, 5))); len(c) != 0 {
		t.Fatalf("counter reset: %v", c)
	}
	e = New("edge-1", Options{Flows: FlowOptions{CaptureDrops: CaptureDropsOptions{Disabled: true}}})
	e.ObserveFlows(capDev, snap(0, drops(0, 0)))
	if c := e.ObserveFlows(capDev, snap(1, drops(10000, 9000))); len(c) != 0 {
		t.Fatalf("disabled: %v", c)
	}
}

// Threshold rules may name the flow metrics: the interval's samples go
// through the metric rules too.
func TestFlowSamplesReachMetricRules(t *testing.T) {
	e := New("edge-1", Options{Thresholds: []ThresholdRule{{Kind: "busy_capture", Metric: flow.MetricPacketsPerSec, Threshold: 50}}})
	c := e.ObserveFlows(capDev, snap(0, nil)) // 1000 packets in 10s
	if len(c) != 1 || c[0].Issue.Kind != "busy_capture" || c[0].Issue.Device != capDev || c[0].Issue.Object != `{capture="eth1"}` {
		t.Fatalf("changes %v", c)
	}
}

// meterRun feeds frames (one per millisecond from t0) through a real meter
// and engine and returns the changes, the capture ended after the last.
func meterRun(t *testing.T, e *Engine, frames []synth.Frame) []Change {
	t.Helper()
	const dev = "edge-1:unit"
	var all []Change
	var last time.Time
	m := flow.NewMeter(flow.MeterConfig{Name: "unit"}, layers.LinkTypeEthernet, slog.New(slog.DiscardHandler), func(s *flow.Snapshot) {
		all = append(all, e.ObserveFlows(dev, s)...)
		last = s.End
	})
	t0 := at(0).UnixNano()
	buf := make([]byte, 0, 256)
	for i := range frames {
		out, wire := synth.Append(buf[:0], &frames[i])
		m.Packet(out, t0+int64(i)*int64(time.Millisecond), wire)
	}
	m.Finish()
	return append(all, e.EndCapture(dev, last)...)
}

// A SYN flood on a port while a scanner probes the same host: the flood
// names the port, counts neither the scanner's SYNs nor the clients'
// completed handshakes as half-open, and does not list the scanner among
// its sources; the scanner is a port_scan naming its target.
func TestSYNFloodEvidenceWithConcurrentScan(t *testing.T) {
	victim, scanner, client := addr("192.0.2.80"), addr("198.51.100.9"), addr("203.0.113.5")
	rng := rand.New(rand.NewPCG(3, 4))
	var fs []synth.Frame
	for i := range 2000 {
		if i < 300 { // the scan, interleaved
			fs = append(fs, synth.Frame{Src: scanner, Dst: victim, Proto: 6, SrcPort: 40000, DstPort: uint16(1000 + i), TCPFlags: 0x02},
				synth.Frame{Src: victim, Dst: scanner, Proto: 6, SrcPort: uint16(1000 + i), DstPort: 40000, TCPFlags: 0x14})
		}
		if i < 50 { // clients that complete their handshakes
			p := uint16(30000 + i)
			fs = append(fs, synth.Frame{Src: client, Dst: victim, Proto: 6, SrcPort: p, DstPort: 80, TCPFlags: 0x02},
				synth.Frame{Src: victim, Dst: client, Proto: 6, SrcPort: 80, DstPort: p, TCPFlags: 0x12},
				synth.Frame{Src: client, Dst: victim, Proto: 6, SrcPort: p, DstPort: 80, TCPFlags: 0x10})
		}
		src := netip.AddrFrom4([4]byte{100, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
		fs = append(fs, synth.Frame{Src: src, Dst: victim, Proto: 6, SrcPort: uint16(1024 + i), DstPort: 80, TCPFlags: 0x02},
			synth.Frame{Src: victim, Dst: src, Proto: 6, SrcPort: 80, DstPort: uint16(1024 + i), TCPFlags: 0x12})
	}
	all := meterRun(t, New("edge-1", Options{}), fs)
	onlyKinds(t, all, KindPortScan, KindSYNFlood)
	flood := find(all, KindSYNFlood, victim.String())
	if len(flood) != 2 || flood[0].Type != Opened {
		t.Fatalf("syn_flood changes: %s", describeIssues(all))
	}
	a := flood[0].Issue.Attributes
	if a["dst_port"] != "80" || a["syns"] != "2050" || a["half_open"] != "2000" || a["handshakes_completed"] != "50" ||
		a["excluded_scanners"] != scanner.String() || a["excluded_scan_syns"] != "300" ||
		strings.Contains(a["top_sources"], scanner.String()) || !strings.Contains(flood[0].Issue.Summary, "192.0.2.80:80") {
		t.Errorf("syn_flood evidence %s %v", flood[0].Issue.Summary, a)
	}
	scan := find(all, KindPortScan, scanner.String())
	if len(scan) != 2 || scan[0].Issue.Attributes["target"] != victim.String() || scan[0].Issue.Attributes["unanswered"] != "300" ||
		!strings.Contains(scan[0].Issue.Summary, "(192.0.2.80)") {
		t.Errorf("port_scan: %s", describeIssues(scan))
	}
	if len(find(all, KindPortScan, client.String())) != 0 {
		t.Errorf("the clients were taken for a scanner")
	}
}

// A flood that keeps growing is UPDATED with its new figures once they
// move by half again; small moves are not news.
func TestSYNFloodGrowingUpdates(t *testing.T) {
	victim := addr("192.0.2.80")
	flood := func(syns uint64) func(*flow.Snapshot) {
		return func(s *flow.Snapshot) {
			s.FanIn = []flow.FanIn{{Dst: victim, Flows: syns, SYNs: syns, Sources: float64(syns), Seen: syns, Port: 443}}
		}
	}
	e := New("edge-1", Options{})
	c := e.ObserveFlows(capDev, snap(0, flood(200)))
	if len(c) != 1 || c[0].Type != Opened || !strings.Contains(c[0].Issue.Summary, "200 bare SYNs") {
		t.Fatalf("open: %s", describeIssues(c))
	}
	if c := e.ObserveFlows(capDev, snap(1, flood(250))); len(c) != 0 {
		t.Fatalf("a small move announced: %s", describeIssues(c))
	}
	c = e.ObserveFlows(capDev, snap(2, flood(900)))
	if len(c) != 1 || c[0].Type != Updated || !strings.Contains(c[0].Issue.Summary, "900 bare SYNs") ||
		c[0].Issue.Attributes["syns"] != "900" || c[0].Issue.Severity != SeverityMajor {
		t.Fatalf("growth: %s", describeIssues(c))
	}
	c = e.ObserveFlows(capDev, snap(3, flood(1000)))
	if len(c) != 1 || c[0].Type != Updated || c[0].Issue.Severity != SeverityCritical {
		t.Fatalf("escalation: %s", describeIssues(c))
	}
	if c := e.ObserveFlows(capDev, snap(4, flood(1100))); len(c) != 0 {
		t.Fatalf("same again: %s", describeIssues(c))
	}
}

// A UDP scan of 101 ports, alone in its interval, is reported: small
// distinct sets are counted exactly (a sketch read 93 against 100).
func TestUDPScan101Ports(t *testing.T) {
	scanner, target := addr("198.51.100.7"), addr("192.0.2.7")
	var fs []synth.Frame
	for p := range 101 {
		fs = append(fs, synth.Frame{Src: scanner, Dst: target, Proto: 17, SrcPort: 50000, DstPort: uint16(7000 + p), Payload: 8},
			synth.Frame{Src: target, Dst: scanner, Proto: 1, ICMPType: 3, ICMPCode: 3, Payload: 36})
	}
	all := meterRun(t, New("edge-1", Options{}), fs)
	scan := find(all, KindPortScan, scanner.String())
	if len(scan) != 2 || scan[0].Type != Opened || scan[0].Issue.Attributes["dst_ports"] != "101" ||
		scan[0].Issue.Attributes["target"] != target.String() {
		t.Fatalf("changes: %s", describeIssues(all))
	}
}

// A flood carried over from an earlier run continues silently at the
// figure it had, and is UPDATED when it grows past it by half.
func TestSYNFloodRestoredThenGrows(t *testing.T) {
	victim := addr("192.0.2.80")
	flood := func(syns uint64) func(*flow.Snapshot) {
		return func(s *flow.Snapshot) {
			s.FanIn = []flow.FanIn{{Dst: victim, Flows: syns, SYNs: syns, Sources: float64(syns), Seen: syns, Port: 443}}
		}
	}
	e := New("edge-1", Options{})
	if c := e.ObserveFlows(capDev, snap(0, flood(300))); len(c) != 1 || c[0].Type != Opened {
		t.Fatalf("open: %s", describeIssues(c))
	}
	e = restart(e, Options{}, at(2))
	if c := e.ObserveFlows(capDev, snap(3, flood(350))); len(c) != 0 {
		t.Fatalf("after the restart: %s", describeIssues(c))
	}
	c := e.ObserveFlows(capDev, snap(4, flood(600)))
	if len(c) != 1 || c[0].Type != Updated || c[0].Issue.Attributes["syns"] != "600" {
		t.Fatalf("growth after the restart: %s", describeIssues(c))
	}
}

// A busy edge's flow count is steady: after learning it, a bump of a few
// percent is no high_flow_count, however well it scores; one and a half
// times the usual count is.
func TestHighFlowCountAnomalyNeedsARealRise(t *testing.T) {
	// Past the anomaly scorer's 12.5 h warm-up at 10 s intervals.
	const learnIntervals = 5000
	learnt := func() *Engine {
		e := New("edge-1", Options{})
		r := rand.New(rand.NewPCG(5, 6))
		for i := range learnIntervals {
			a := 90000 + r.IntN(400)
			if c := e.ObserveFlows(capDev, snap(i, func(s *flow.Snapshot) { s.Active = a })); len(c) != 0 {
				t.Fatalf("baseline interval %d: %v", i, describeIssues(c))
			}
		}
		return e
	}
	e := learnt()
	for i := learnIntervals; i < learnIntervals+3; i++ {
		if c := e.ObserveFlows(capDev, snap(i, func(s *flow.Snapshot) { s.Active = 96000 })); len(c) != 0 {
			t.Fatalf("a 6%% bump: %v", describeIssues(c))
		}
	}
	e = learnt()
	c := e.ObserveFlows(capDev, snap(learnIntervals, func(s *flow.Snapshot) { s.Active = 140000 }))
	if len(c) != 1 || c[0].Issue.Kind != KindHighFlowCount || c[0].Issue.Attributes["reason"] != "anomaly" {
		t.Fatalf("one and a half times the usual: %v", describeIssues(c))
	}
}
