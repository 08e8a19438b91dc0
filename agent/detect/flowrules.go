package detect

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/netaiops/netaiops/agent/detect/anomaly"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/flow"
)

// Issue kinds raised by the flow rules. Their device is the capture point
// (the agent names it "<agent id>:<interface or pcap file>"); their object
// is the source (port_scan) or destination (syn_flood, udp_reflection)
// address, or "" for the capture point as a whole.
const (
	KindHighFlowCount = "high_flow_count"
	KindPortScan      = "port_scan"
	KindSYNFlood      = "syn_flood"
	KindTrafficSpike  = "traffic_spike"
	KindCaptureDrops  = "capture_drops"
	KindReflection    = "udp_reflection"
)

// Defaults of the flow rules. Counts are per interval of the capture point
// (flow.FeatureConfig.Interval, 10s by default).
const (
	DefaultFlowKeepFiringFor = time.Minute
	DefaultHighFlowActive    = 1 << 19 // half the flow table's default capacity
	DefaultHighFlowNewPerSec = 10000
	DefaultHighFlowMinActive = 1000
	// DefaultHighFlowMinRatio: an anomalous flow count is news when it
	// reaches one and a half times the usual. A busy edge's flow count is
	// so steady that its model's band is a few percent wide: a bump of 5%
	// scores as an anomaly and is nothing an operator acts on.
	DefaultHighFlowMinRatio    = 1.5
	DefaultScanDstPorts        = 100
	DefaultScanDstAddrs        = 200
	DefaultSYNFloodSYNs        = 100
	DefaultSYNFloodHalfOpen    = 100
	DefaultSpikeMinBytesPerSec = 125000 // 1 Mbit/s
	DefaultCaptureDrops        = 100
	DefaultScanUnanswered      = 0.5
	DefaultReflectionFlows     = 1000
	DefaultReflectionSources   = 20
	// DefaultUpdateGrowth: a firing flow issue is UPDATED when its main
	// figure (probes, half-open SYNs, reflected flows) reaches this factor
	// of the figure it last announced, or falls below its inverse.
	DefaultUpdateGrowth = 1.5
)

// FlowOptions tune the flow rules. Zero values mean the defaults; where 0
// is a meaningful setting (HalfOpen, MinActive, MinBytesPerSecond), a
// negative value says "no minimum".
type FlowOptions struct {
	// KeepFiringFor is how long a flow issue stays open after its
	// condition was last true; 0: DefaultFlowKeepFiringFor.
	KeepFiringFor time.Duration
	HighFlowCount HighFlowCountOptions
	PortScan      PortScanOptions
	SYNFlood      SYNFloodOptions
	TrafficSpike  TrafficSpikeOptions
	CaptureDrops  CaptureDropsOptions
	Reflection    ReflectionOptions
}

// ReflectionOptions: udp_reflection opens for a destination that received
// Flows flows from the well-known ports of UDP services that answer more
// than they are asked (DNS, NTP, SNMP, SSDP, CLDAP, memcached, chargen),
// from Sources distinct sources, in one interval, without having asked.
type ReflectionOptions struct {
	Disabled bool
	Flows    uint64
	Sources  float64
}

// HighFlowCountOptions: high_flow_count opens when the flows in the table
// reach ActiveFlows, new flows per second reach NewFlowsPerSecond, or
// (unless NoAnomaly) the active flows score MinScore or more above the
// capture point's own history, reach MinRatio times the expected count
// and at least MinActive.
type HighFlowCountOptions struct {
	Disabled          bool
	ActiveFlows       int
	NewFlowsPerSecond float64
	NoAnomaly         bool
	MinActive         int
	MinScore          float64 // 0: DefaultMinScore
	MinRatio          float64 // of the active flows to the expected; 0: DefaultHighFlowMinRatio
}

// PortScanOptions: port_scan opens for a source that opened flows to
// DstPorts distinct destination ports (a vertical scan) or DstAddrs
// distinct destination addresses (a sweep) in one interval, of which the
// share Unanswered or more got no answer (refused or silent; see
// flow.EvEstablished).
type PortScanOptions struct {
	Disabled           bool
	DstPorts, DstAddrs float64
	Unanswered         float64 // 0: DefaultScanUnanswered
}

// SYNFloodOptions: syn_flood opens for a destination sent SYNs flows opened
// by a bare SYN in one interval, of which HalfOpen and at least half did
// not complete their handshake; the SYNs of sources scanning the
// destination are not counted (that is port_scan).
type SYNFloodOptions struct {
	Disabled bool
	SYNs     uint64
	HalfOpen int
}

// TrafficSpikeOptions: traffic_spike opens when an interval's bytes per
// second score MinScore or more above the capture point's own history
// (agent/detect/anomaly) and reach MinBytesPerSecond. The model learns for
// its first 150 intervals.
type TrafficSpikeOptions struct {
	Disabled          bool
	MinScore          float64 // 0: DefaultMinScore
	MinBytesPerSecond float64
}

// CaptureDropsOptions: capture_drops opens when the kernel dropped Drops
// packets of the capture in one interval.
type CaptureDropsOptions struct {
	Disabled bool
	Drops    uint64
}

func (o *FlowOptions) defaults() {
	if o.KeepFiringFor <= 0 {
		o.KeepFiringFor = DefaultFlowKeepFiringFor
	}
	h := &o.HighFlowCount
	if h.ActiveFlows <= 0 {
		h.ActiveFlows = DefaultHighFlowActive
	}
	if h.NewFlowsPerSecond <= 0 {
		h.NewFlowsPerSecond = DefaultHighFlowNewPerSec
	}
	if h.MinActive == 0 {
		h.MinActive = DefaultHighFlowMinActive
	}
	if h.MinScore <= 0 {
		h.MinScore = DefaultMinScore
	}
	if h.MinRatio <= 0 {
		h.MinRatio = DefaultHighFlowMinRatio
	}
	if o.PortScan.DstPorts <= 0 {
		o.PortScan.DstPorts = DefaultScanDstPorts
	}
	if o.PortScan.DstAddrs <= 0 {
		o.PortScan.DstAddrs = DefaultScanDstAddrs
	}
	if o.SYNFlood.SYNs == 0 {
		o.SYNFlood.SYNs = DefaultSYNFloodSYNs
	}
	if o.SYNFlood.HalfOpen == 0 {
		o.SYNFlood.HalfOpen = DefaultSYNFloodHalfOpen
	}
	if o.TrafficSpike.MinScore <= 0 {
		o.TrafficSpike.MinScore = DefaultMinScore
	}
	if o.TrafficSpike.MinBytesPerSecond == 0 {
		o.TrafficSpike.MinBytesPerSecond = DefaultSpikeMinBytesPerSec
	}
	if o.CaptureDrops.Drops == 0 {
		o.CaptureDrops.Drops = DefaultCaptureDrops
	}
	if o.PortScan.Unanswered <= 0 {
		o.PortScan.Unanswered = DefaultScanUnanswered
	}
	if o.Reflection.Flows == 0 {
		o.Reflection.Flows = DefaultReflectionFlows
	}
	if o.Reflection.Sources <= 0 {
		o.Reflection.Sources = DefaultReflectionSources
	}
}

// flowDevice is what the flow rules remember of one capture point.
type flowDevice struct {
	last      time.Time            // end of the newest interval judged
	conds     map[string]*flowCond // by fingerprint
	drops     uint64               // kernel drops at the previous interval
	kernelPkt uint64               // packets the kernel passed, same
	haveDrops bool
}

// flowCond is one flow condition (kind, object) and its latest evidence.
type flowCond struct {
	cond
	kind, object string
	sev          Severity
	summary      string
	attrs        map[string]string
	figure       float64 // main figure of the evidence
	announced    float64 // the figure last opened or updated with
}

// flowHit is a condition found true in one interval.
type flowHit struct {
	kind, object string
	sev          Severity
	summary      string
	attrs        map[string]string
	figure       float64 // its main figure, 0: none
}

// ObserveFlows runs the rules on one closed interval of a capture point:
// the metric rules on the interval's samples (so threshold and anomaly
// rules may name flow_* metrics), then the flow rules on the snapshot. Time
// is the interval's end, a packet time: replaying a capture gives the
// issues the live capture gave. An interval ending before the newest one
// judged for device is ignored (nil).
func (e *Engine) ObserveFlows(device string, s *flow.Snapshot) []Change {
	if e.flows == nil {
		e.flows = map[string]*flowDevice{}
	}
	fd := e.flows[device]
	if fd == nil {
		fd = &flowDevice{conds: map[string]*flowCond{}}
		e.flows[device] = fd
	}
	at := s.End
	if !fd.last.IsZero() && at.Before(fd.last) {
		return nil
	}
	fd.last = at
	d := e.device(device)
	var ch changes
	e.metrics(&ch, d, device, at, s.Samples(device))

	o := &e.opts.Flows
	var hits []flowHit
	if !o.HighFlowCount.Disabled {
		hits = e.highFlowCount(hits, device, s)
	}
	scans := e.scanners(s)
	if !o.PortScan.Disabled {
		hits = e.portScan(hits, device, s, scans)
	}
	if !o.SYNFlood.Disabled {
		hits = e.synFlood(hits, device, s, scans)
	}
	if !o.Reflection.Disabled {
		hits = e.reflection(hits, device, s)
	}
	if !o.TrafficSpike.Disabled {
		hits = e.trafficSpike(hits, device, s)
	}
	hits = e.captureDrops(hits, fd, device, s)

	now := make(map[string]*flowHit, len(hits))
	for i := range hits {
		h := &hits[i]
		fp := Fingerprint(h.kind, device, h.object)
		now[fp] = h
		if fd.conds[fp] == nil {
			fd.conds[fp] = &flowCond{kind: h.kind, object: h.object}
		}
	}
	fps := make([]string, 0, len(fd.conds))
	for fp := range fd.conds {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		fc := fd.conds[fp]
		h := now[fp]
		if h != nil {
			fc.sev, fc.summary, fc.attrs, fc.figure = h.sev, h.summary, h.attrs, h.figure
		}
		started, stopped := fc.step(h != nil, at, 0, o.KeepFiringFor)
		is := d.open[fp]
		switch {
		case started:
			fc.announced = fc.figure
			e.open(&ch, d, fc.kind, device, fc.object, fc.sev, at, at, fc.summary, withSince(fc.attrs, fc.activeSince))
		case stopped && is != nil:
			is.Attributes = carried(is, withSince(fc.attrs, is.FirstSeen)) // step cleared activeSince
			is.Attributes["last_seen_true"] = formatTime(fc.lastTrue)
			ch.resolve(d, is, at, "cleared")
		case fc.firing && is != nil && h != nil:
			is.LastSeen = at
			is.Attributes = carried(is, withSince(fc.attrs, fc.activeSince))
			// Figures that moved far from the announced ones are news: a
			// growing flood says how big it is now.
			if fc.announced == 0 { // an issue carried over from an earlier run
				fc.announced = fc.figure
			}
			moved := fc.announced > 0 && (fc.figure >= DefaultUpdateGrowth*fc.announced || fc.figure*DefaultUpdateGrowth <= fc.announced)
			if fc.sev != is.Severity || moved {
				is.Severity, is.Summary = fc.sev, fc.summary
				fc.announced = fc.figure
				ch.update(d, is, at)
			}
		}
		if !fc.firing && fc.activeSince.IsZero() {
			delete(fd.conds, fp)
		}
	}
	e.settle(&ch, d, device, at)
	return ch
}

// EndCapture says a capture point ended (a replayed file was read to its
// end): its open issues resolve at at with resolution "capture ended", in
// fingerprint order, and its state is dropped.
func (e *Engine) EndCapture(device string, at time.Time) []Change {
	return e.forget(device, at, "capture ended")
}

func withSince(attrs map[string]string, since time.Time) map[string]string {
	out := make(map[string]string, len(attrs)+1)
	for k, v := range attrs {
		out[k] = v
	}
	if !since.IsZero() {
		out["since"] = formatTime(since)
	}
	return out
}

// intervalAttrs is the evidence every flow issue carries about its interval.
func intervalAttrs(s *flow.Snapshot) map[string]string {
	return map[string]string{
		"capture":        s.Capture,
		"interval_start": formatTime(s.Start),
		"interval_end":   formatTime(s.End),
		"interval":       span(s).String(),
	}
}

// span is the interval's length, to the millisecond.
func span(s *flow.Snapshot) time.Duration { return s.End.Sub(s.Start).Round(time.Millisecond) }

// count renders "1 source", "209 sources" from a count or an estimate.
func count(n float64, noun string) string {
	v := strconv.FormatFloat(n, 'f', 0, 64)
	if v == "1" {
		return v + " " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return v + " " + noun + "es"
	}
	return v + " " + noun + "s"
}

func intervalSeconds(s *flow.Snapshot) float64 {
	if secs := s.Seconds(); secs > 0 {
		return secs
	}
	return 1
}

// topSources lists the sources that opened the most flows in the interval:
// "198.18.100.100 (126 flows, 127 ports, 1 addresses), ...".
func topSources(s *flow.Snapshot, n int) string {
	var b strings.Builder
	for i, f := range s.FanOut {
		if i == n {
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d flows, %.0f ports, %.0f addresses)", f.Src, f.Flows, f.DstPorts, f.DstAddrs)
	}
	return b.String()
}

// topTalkers lists the sources that sent the most bytes in the interval.
func topTalkers(s *flow.Snapshot, n int) string {
	var b strings.Builder
	for i, t := range s.TopTalkers {
		if i == n {
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d bytes)", t.Addr, t.Bytes)
	}
	return b.String()
}

// escalate is sev, one step up when value reaches ten times the threshold.
func escalate(sev Severity, value, threshold float64) Severity {
	if threshold > 0 && value >= 10*threshold && sev < SeverityCritical {
		return sev + 1
	}
	return sev
}

func (e *Engine) score(device, metric string, at time.Time, v float64) (anomaly.Result, bool) {
	if e.scorer == nil {
		e.scorer = anomaly.NewSet(e.opts.MaxAnomalySeries, anomalyIdle)
	}
	res, err := e.scorer.Update(seriesKey(device, metric, collector.Labels{}), at, v)
	if err != nil {
		e.stats.AnomalyDropped++
		return res, false
	}
	return res, true
}

func (e *Engine) highFlowCount(hits []flowHit, device string, s *flow.Snapshot) []flowHit {
	o := e.opts.Flows.HighFlowCount
	active := float64(s.Active)
	newPerSec := float64(s.NewFlows) / intervalSeconds(s)
	var reasons []string
	if s.Active >= o.ActiveFlows {
		reasons = append(reasons, "active_flows")
	}
	if newPerSec >= o.NewFlowsPerSecond {
		reasons = append(reasons, "new_flows_per_second")
	}
	var res anomaly.Result
	scored := false
	if !o.NoAnomaly {
		// Scored every interval, so that the model learns the usual count.
		res, scored = e.score(device, flow.MetricActive, s.End, active)
		fd := e.flows[device]
		fp := Fingerprint(KindHighFlowCount, device, "")
		held := fd.conds[fp] != nil && fd.conds[fp].firing
		if scored && !res.Learning && s.Active >= o.MinActive && res.Deviation > 0 && active >= o.MinRatio*res.Expected &&
			(res.Score >= o.MinScore || (held && res.Deviation >= DefaultMinDeviation)) {
			reasons = append(reasons, "anomaly")
		}
	}
	if len(reasons) == 0 {
		return hits
	}
	a := intervalAttrs(s)
	a["active_flows"] = strconv.Itoa(s.Active)
	a["new_flows"] = strconv.FormatUint(s.NewFlows, 10)
	a["new_flows_per_second"] = formatValue(newPerSec)
	a["distinct_src"] = formatValue(s.DistinctSrc)
	a["distinct_dst"] = formatValue(s.DistinctDst)
	a["threshold_active_flows"] = strconv.Itoa(o.ActiveFlows)
	a["threshold_new_flows_per_second"] = formatFloat(o.NewFlowsPerSecond)
	a["reason"] = strings.Join(reasons, ",")
	a["top_sources"] = topSources(s, 5)
	if scored && !res.Learning {
		a["expected"], a["upper"] = formatValue(res.Expected), formatValue(res.Upper)
		a["score"] = strconv.FormatFloat(res.Score, 'f', 3, 64)
		a["deviation"] = strconv.FormatFloat(res.Deviation, 'f', 1, 64)
	}
	sev := escalate(SeverityWarning, active, float64(o.ActiveFlows))
	return append(hits, flowHit{kind: KindHighFlowCount, sev: sev, attrs: a,
		summary: fmt.Sprintf("high flow count on %s: %d active flows, %s new/s (%s)", device, s.Active,
			formatValue(newPerSec), strings.Join(reasons, ", "))})
}

// scanner is a source judged a scanner in one interval.
type scanner struct {
	f     *flow.FanOut
	shape string
}

// scanners are the sources of the interval that probe: many distinct ports
// (vertical) or addresses (sweep), most of them unanswered. A busy client
// (a proxy, a NAT gateway, a page load from a CDN) reaches hundreds of
// addresses too, but its connections are answered: a scan is judged by
// its failures, not by its reach alone.
func (e *Engine) scanners(s *flow.Snapshot) []scanner {
	o := e.opts.Flows.PortScan
	var out []scanner
	for i := range s.FanOut {
		f := &s.FanOut[i]
		vertical, sweep := f.DstPorts >= o.DstPorts, f.DstAddrs >= o.DstAddrs
		if !vertical && !sweep {
			continue
		}
		// Half of the flows unanswered (refused, or no reply at all): a
		// busy client sees a few percent fail. Seen counts from when the
		// source entered the top list, so the ratio is over the same flows.
		if f.Seen == 0 || float64(f.Unanswered()) < o.Unanswered*float64(f.Seen) {
			continue
		}
		shape := "vertical"
		switch {
		case vertical && sweep:
			shape = "vertical and sweep"
		case sweep:
			shape = "sweep"
		}
		out = append(out, scanner{f: f, shape: shape})
	}
	return out
}

// targets names what a scanner probed: its one target, or the range of a
// sweep.
func targets(f *flow.FanOut) string {
	t := f.Target.String()
	if f.DstAddrs >= 1.5 && f.DstLo != f.DstHi {
		t = fmt.Sprintf("%s-%s", f.DstLo, f.DstHi)
	}
	if f.DstPorts < 1.5 && f.Port != 0 {
		t += " port " + strconv.Itoa(int(f.Port))
	}
	return t
}

func (e *Engine) portScan(hits []flowHit, device string, s *flow.Snapshot, scans []scanner) []flowHit {
	o := e.opts.Flows.PortScan
	for _, sc := range scans {
		f := sc.f
		a := intervalAttrs(s)
		a["src"] = f.Src.String()
		a["flows"] = strconv.FormatUint(f.Flows, 10)
		a["flows_error"] = strconv.FormatUint(f.Error, 10)
		a["probes"] = strconv.FormatUint(f.Seen, 10)
		a["unanswered"] = strconv.FormatUint(f.Unanswered(), 10)
		a["syns"] = strconv.FormatUint(f.SYNs, 10)
		a["dst_ports"] = formatValue(f.DstPorts)
		a["dst_addrs"] = formatValue(f.DstAddrs)
		a["target"] = targets(f)
		if f.DstPorts < 1.5 && f.Port != 0 {
			a["dst_port"] = strconv.Itoa(int(f.Port))
		}
		if f.DstAddrs < 1.5 {
			a["dst"] = f.Target.String()
		} else {
			a["dst_first"], a["dst_last"] = f.DstLo.String(), f.DstHi.String()
		}
		a["threshold_dst_ports"] = formatFloat(o.DstPorts)
		a["threshold_dst_addrs"] = formatFloat(o.DstAddrs)
		a["threshold_unanswered"] = formatFloat(o.Unanswered)
		a["shape"] = sc.shape
		a["top_sources"] = topSources(s, 5)
		sev := escalate(escalate(SeverityWarning, f.DstPorts, o.DstPorts), f.DstAddrs, o.DstAddrs)
		hits = append(hits, flowHit{kind: KindPortScan, object: f.Src.String(), sev: sev, attrs: a,
			figure: float64(f.Seen),
			summary: fmt.Sprintf("port scan (%s) from %s on %s: %s on %s (%s), %d of %d probes unanswered in %s",
				sc.shape, f.Src, device, count(f.DstPorts, "destination port"), count(f.DstAddrs, "address"), targets(f),
				f.Unanswered(), f.Seen, span(s))})
	}
	return hits
}

// synFlood judges each destination on its own: SYNs that did not complete
// their handshake in the interval (a busy server completes nearly all of
// its own, however many), less those of the scanners probing it (that is
// port_scan).
func (e *Engine) synFlood(hits []flowHit, device string, s *flow.Snapshot, scans []scanner) []flowHit {
	o := e.opts.Flows.SYNFlood
	for i := range s.FanIn {
		f := &s.FanIn[i]
		halfOpen, syns := f.HalfOpen(), f.SYNs
		var scanSYNs uint64
		var scanSrcs []string
		for _, sc := range scans {
			if sc.f.Target == f.Dst {
				scanSYNs += sc.f.SYNs
				scanSrcs = append(scanSrcs, sc.f.Src.String())
			}
		}
		syns -= min(scanSYNs, syns)
		halfOpen -= min(scanSYNs, halfOpen)
		sources := max(f.Sources-float64(len(scanSrcs)), 0)
		if syns < o.SYNs || (o.HalfOpen > 0 && halfOpen < uint64(o.HalfOpen)) || 2*halfOpen < syns {
			continue
		}
		a := intervalAttrs(s)
		a["dst"] = f.Dst.String()
		if f.Port != 0 {
			a["dst_port"] = strconv.Itoa(int(f.Port))
		}
		a["syns"] = strconv.FormatUint(syns, 10)
		a["syns_per_second"] = formatValue(float64(syns) / intervalSeconds(s))
		a["flows"] = strconv.FormatUint(f.Flows, 10)
		a["sources"] = formatValue(sources)
		a["half_open"] = strconv.FormatUint(halfOpen, 10)
		a["handshakes_completed"] = strconv.FormatUint(f.SYNsAnswer, 10)
		a["half_open_capture"] = strconv.Itoa(s.HalfOpen)
		a["threshold_syns"] = strconv.FormatUint(o.SYNs, 10)
		a["threshold_half_open"] = strconv.Itoa(max(o.HalfOpen, 0))
		if len(scanSrcs) > 0 {
			a["excluded_scanners"] = strings.Join(scanSrcs, ",")
			a["excluded_scan_syns"] = strconv.FormatUint(scanSYNs, 10)
		}
		a["top_sources"] = floodSources(s, f, scans)
		sev := escalate(SeverityMajor, float64(halfOpen), float64(o.SYNs))
		hits = append(hits, flowHit{kind: KindSYNFlood, object: f.Dst.String(), sev: sev, attrs: a, figure: float64(halfOpen),
			summary: fmt.Sprintf("SYN flood to %s on %s: %s, %d never completed, from %s in %s",
				dstPort(f.Dst, f.Port), device, count(float64(syns), "bare SYN"), halfOpen, count(sources, "source"), span(s))})
	}
	return hits
}

func dstPort(a netip.Addr, port uint16) string {
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

// floodSources lists the sources that sent most of their flows to dst,
// scanners left out; a spoofed flood has none above one flow, and says so
// with its majority source.
func floodSources(s *flow.Snapshot, f *flow.FanIn, scans []scanner) string {
	var b strings.Builder
	n := 0
outer:
	for i := range s.FanOut {
		o := &s.FanOut[i]
		if o.Target != f.Dst || o.Seen < 2 || n == 5 {
			continue
		}
		for _, sc := range scans {
			if sc.f.Src == o.Src {
				continue outer
			}
		}
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d flows, %d SYNs)", o.Src, o.Seen, o.SYNs)
		n++
	}
	if n == 0 {
		return fmt.Sprintf("none above one flow (%s distinct, likely spoofed)", formatValue(f.Sources))
	}
	return b.String()
}

// reflection: a destination that receives many flows it never asked for
// from well-known UDP service ports (DNS, NTP, SNMP, SSDP, memcached,
// CLDAP, chargen) of many sources: a reflected, amplified flood.
func (e *Engine) reflection(hits []flowHit, device string, s *flow.Snapshot) []flowHit {
	o := e.opts.Flows.Reflection
	for i := range s.FanIn {
		f := &s.FanIn[i]
		if f.Reflected < o.Flows || f.Sources < o.Sources {
			continue
		}
		a := intervalAttrs(s)
		a["dst"] = f.Dst.String()
		a["reflected_flows"] = strconv.FormatUint(f.Reflected, 10)
		a["reflected_bytes"] = strconv.FormatUint(f.ReflectedBytes, 10)
		a["reflected_bytes_per_second"] = formatValue(float64(f.ReflectedBytes) / intervalSeconds(s))
		a["src_port"] = strconv.Itoa(int(f.ReflectPort))
		a["sources"] = formatValue(f.Sources)
		a["flows"] = strconv.FormatUint(f.Flows, 10)
		a["threshold_flows"] = strconv.FormatUint(o.Flows, 10)
		a["threshold_sources"] = formatFloat(o.Sources)
		sev := escalate(SeverityMajor, float64(f.Reflected), float64(o.Flows))
		hits = append(hits, flowHit{kind: KindReflection, object: f.Dst.String(), sev: sev, attrs: a, figure: float64(f.Reflected),
			summary: fmt.Sprintf("UDP reflection flood to %s on %s: %s from UDP port %d of %s, %s, in %s",
				f.Dst, device, count(float64(f.Reflected), "unsolicited response"), f.ReflectPort, count(f.Sources, "source"),
				formatBytes(f.ReflectedBytes), span(s))})
	}
	return hits
}

func formatBytes(b uint64) string {
	return strconv.FormatFloat(float64(b)/1e6, 'f', 1, 64) + " MB"
}

func (e *Engine) trafficSpike(hits []flowHit, device string, s *flow.Snapshot) []flowHit {
	o := e.opts.Flows.TrafficSpike
	rate := float64(s.Bytes) / intervalSeconds(s)
	res, ok := e.score(device, flow.MetricBytesPerSecond, s.End, rate)
	if !ok || res.Learning || res.Deviation <= 0 || rate < o.MinBytesPerSecond {
		return hits
	}
	fc := e.flows[device].conds[Fingerprint(KindTrafficSpike, device, "")]
	held := fc != nil && fc.firing
	if res.Score < o.MinScore && !(held && res.Deviation >= DefaultMinDeviation) {
		return hits
	}
	a := intervalAttrs(s)
	a["bytes_per_second"] = formatValue(rate)
	a["packets_per_second"] = formatValue(float64(s.Packets) / intervalSeconds(s))
	a["expected"] = formatValue(res.Expected)
	a["lower"], a["upper"] = formatValue(res.Lower), formatValue(res.Upper)
	a["score"] = strconv.FormatFloat(res.Score, 'f', 3, 64)
	a["deviation"] = strconv.FormatFloat(res.Deviation, 'f', 1, 64)
	a["min_score"] = formatFloat(o.MinScore)
	a["min_bytes_per_second"] = formatFloat(max(o.MinBytesPerSecond, 0))
	a["top_talkers"] = topTalkers(s, 5)
	return append(hits, flowHit{kind: KindTrafficSpike, sev: SeverityWarning, attrs: a,
		summary: fmt.Sprintf("traffic spike on %s: %s B/s, expected %s (up to %s)", device, formatValue(rate),
			formatValue(res.Expected), formatValue(res.Upper))})
}

// captureDrops compares the kernel's cumulative drop counter with the
// previous interval's; a counter that went back (the capture reopened)
// counts from zero.
func (e *Engine) captureDrops(hits []flowHit, fd *flowDevice, device string, s *flow.Snapshot) []flowHit {
	drops, pkts := s.Source.KernelDrops, s.Source.KernelPackets
	dDrops, dPkts := drops, pkts
	if fd.haveDrops && drops >= fd.drops {
		dDrops = drops - fd.drops
	}
	if fd.haveDrops && pkts >= fd.kernelPkt {
		dPkts = pkts - fd.kernelPkt
	}
	fd.drops, fd.kernelPkt, fd.haveDrops = drops, pkts, true
	o := e.opts.Flows.CaptureDrops
	if o.Disabled || dDrops < o.Drops {
		return hits
	}
	// The kernel's packet count includes the packets it dropped.
	ratio := 100 * float64(dDrops) / float64(max(dPkts, dDrops))
	a := intervalAttrs(s)
	a["drops"] = strconv.FormatUint(dDrops, 10)
	a["kernel_packets"] = strconv.FormatUint(dPkts, 10)
	a["drop_percent"] = formatValue(ratio)
	a["drops_total"] = strconv.FormatUint(drops, 10)
	a["queue_freezes_total"] = strconv.FormatUint(s.Source.QueueFreezes, 10)
	a["threshold_drops"] = strconv.FormatUint(o.Drops, 10)
	sev := SeverityWarning
	if ratio >= 10 {
		sev = SeverityMajor
	}
	return append(hits, flowHit{kind: KindCaptureDrops, sev: sev, attrs: a,
		summary: fmt.Sprintf("capture on %s lost %s in the kernel in %s (%s%%): flow rules see less than the link carried",
			device, count(float64(dDrops), "packet"), span(s), formatValue(ratio))})
}
