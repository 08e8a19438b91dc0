package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/bpf"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/collector/flow"
)

// flowQueue bounds the intervals waiting for the detection engine. When it
// is full the capture waits (a replay reads no further; a live capture
// lets the kernel ring fill, and what the kernel drops raises
// capture_drops), so no interval is ever lost between meter and engine.
const flowQueue = 16

// agentFlows is the agent's flow capture (the flows section): one meter per
// capture point, each on a goroutine of its own, whose closed intervals go
// to the detection goroutine through c.
type agentFlows struct {
	c         chan flowMsg // nil: no capture configured
	intervals atomic.Uint64
	failures  atomic.Uint64
	caps      atomic.Pointer[[]*captureStats] // the capture points running, for metrics
}

// captureStats is what the metrics show of one capture point: written by
// its capture goroutine at each interval, read by scrapes.
type captureStats struct {
	name                        string
	src                         flow.Source // Stats is safe from any goroutine
	packets, bytes              atomic.Uint64
	decodeErrors, evicted, news atomic.Uint64
	active                      atomic.Int64
}

func (cs *captureStats) observe(s *flow.Snapshot) {
	cs.packets.Add(s.Packets)
	cs.bytes.Add(s.Bytes)
	cs.news.Add(s.NewFlows)
	cs.decodeErrors.Store(s.Decode.BadTotal())
	cs.evicted.Store(s.Table.Evicted)
	cs.active.Store(int64(s.Active))
}

// flowMsg is one closed interval of a capture point or, with end set, the
// end of a capture (a replayed file read to its end, a capture that failed).
type flowMsg struct {
	device string
	snap   flow.Snapshot
	end    bool
}

// FlowStats counts what the flow capture did.
type FlowStats struct {
	Intervals uint64 // capture intervals the detection engine judged
	Failures  uint64 // capture points that could not open, or failed while running
}

// FlowStats returns the flow capture's counters.
func (a *Agent) FlowStats() FlowStats {
	return FlowStats{Intervals: a.flows.intervals.Load(), Failures: a.flows.failures.Load()}
}

// FlowDevice names the device of a capture point's issues: the agent's id
// and the capture point (an interface, or a pcap file's base name), joined
// by ":" (device names hold no "/": it separates fingerprint parts).
func FlowDevice(agentID, capture string) string { return agentID + ":" + capture }

// startFlows opens the capture points of the flows section and runs each on
// a goroutine of wg until its source ends or ctx ends. It must be called
// before the detection goroutine starts: that one reads a.flows.c. A
// capture point that cannot open is logged and counted; the others, and
// SNMP polling, run on.
func (a *Agent) startFlows(ctx context.Context, wg *sync.WaitGroup) {
	fc := a.cfg.Flows
	if fc == nil {
		return
	}
	a.flows.c = make(chan flowMsg, flowQueue)
	mcfg := func(name string) flow.MeterConfig {
		return flow.MeterConfig{Name: name,
			Table:    flow.TableConfig{MaxFlows: fc.MaxFlows, IdleTimeout: fc.IdleTimeout, ActiveTimeout: fc.ActiveTimeout},
			Features: flow.FeatureConfig{Interval: fc.Interval, TopN: fc.TopN}}
	}
	var caps []*captureStats
	for _, iface := range fc.Interfaces {
		src, err := flow.OpenLive(flow.LiveOptions{Interface: iface, Filter: fc.BPF, Snaplen: fc.Snaplen,
			Promiscuous: fc.Promiscuous, RingMB: fc.RingMB})
		if err != nil {
			a.flows.failures.Add(1)
			a.log.Error("flow capture not started", "device", FlowDevice(a.cfg.Agent.ID, iface), "err", err)
			continue
		}
		caps = append(caps, &captureStats{name: iface, src: src})
	}
	for _, file := range fc.PcapFiles {
		name := config.CaptureName(file)
		src, err := openReplay(file, fc)
		if err != nil {
			a.flows.failures.Add(1)
			a.log.Error("flow replay not started", "device", FlowDevice(a.cfg.Agent.ID, name), "err", err)
			continue
		}
		caps = append(caps, &captureStats{name: name, src: src})
	}
	a.flows.caps.Store(&caps)
	for _, cs := range caps {
		wg.Go(func() { a.runCapture(ctx, cs, mcfg(cs.name)) })
	}
}

// openReplay opens a pcap or pcapng file with the section's filter applied
// in user space, so that a replay sees what a live capture with the same
// filter would have seen.
func openReplay(file string, fc *config.Flows) (flow.Source, error) {
	src, err := flow.OpenFile(file, flow.FileOptions{Paced: fc.ReplaySpeed == config.ReplayRecorded})
	if err != nil {
		return nil, err
	}
	if fc.BPF == "" {
		return src, nil
	}
	raw, err := flow.CompileFilter(fc.BPF, fc.Snaplen)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("replay %s: %w", file, err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		src.Close()
		return nil, fmt.Errorf("replay %s: filter %q: cannot decode its program", file, fc.BPF)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("replay %s: filter %q: %w", file, fc.BPF, err)
	}
	return &filteredSource{Source: src, vm: vm}, nil
}

// filteredSource delivers only the frames its BPF program accepts, cut to
// the length the program returns, as the kernel does for a live capture.
type filteredSource struct {
	flow.Source
	vm      *bpf.VM
	skipped uint64
}

// ReadPacket returns the next frame the filter accepts.
func (s *filteredSource) ReadPacket(ctx context.Context) ([]byte, gopacket.CaptureInfo, error) {
	for {
		data, ci, err := s.Source.ReadPacket(ctx)
		if err != nil {
			return data, ci, err
		}
		n, err := s.vm.Run(data)
		if err == nil && n > 0 {
			return data[:min(n, len(data))], ci, nil
		}
		s.skipped++
		if s.skipped&1023 == 0 && ctx.Err() != nil {
			return nil, ci, ctx.Err()
		}
	}
}

// runCapture meters one capture point until its source ends or ctx ends.
// When the source ends first (a file read to its end, a failure), the
// engine is told, so the point's open issues resolve at its last packet's
// time instead of staying open with no data.
func (a *Agent) runCapture(ctx context.Context, cs *captureStats, cfg flow.MeterConfig) {
	src := cs.src
	device := FlowDevice(a.cfg.Agent.ID, cfg.Name)
	log := a.log.With("component", "flow", "device", device)
	defer func() {
		if err := src.Close(); err != nil {
			log.Warn("close capture", "err", err)
		}
	}()
	var last time.Time
	m := flow.NewMeter(cfg, src.LinkType(), log, func(s *flow.Snapshot) {
		last = s.End
		cs.observe(s)
		a.sendFlow(ctx, flowMsg{device: device, snap: *s}) // the slices are the snapshot's own
	})
	err := m.Run(ctx, src)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		a.flows.failures.Add(1)
		log.Error("flow capture failed", "err", err)
	}
	if !last.IsZero() {
		a.sendFlow(ctx, flowMsg{device: device, end: true, snap: flow.Snapshot{End: last}})
	}
}

// sendFlow hands m to the detection goroutine, waiting while the queue is
// full; it gives up only when ctx ends.
func (a *Agent) sendFlow(ctx context.Context, m flowMsg) {
	select {
	case a.flows.c <- m:
	case <-ctx.Done():
	}
}

// observeFlows runs on the detection goroutine: it judges one interval, or
// ends a capture point.
func (a *Agent) observeFlows(m flowMsg) []detect.Change {
	if m.end {
		a.log.Info("flow capture ended", "device", m.device, "last_packet", m.snap.End)
		return a.engine.EndCapture(m.device, m.snap.End)
	}
	a.flows.intervals.Add(1)
	if a.log.Enabled(context.Background(), slog.LevelDebug) {
		a.log.Debug("flow interval", "device", m.device, "end", m.snap.End, "packets", m.snap.Packets,
			"active", m.snap.Active, "new", m.snap.NewFlows, "half_open", m.snap.HalfOpen)
	}
	return a.engine.ObserveFlows(m.device, &m.snap)
}

// The flow capture's metrics; capture is the capture point (an interface,
// or a pcap file's base name), never an address.
//
//	netaiops_flow_intervals_total              capture intervals the detection engine judged
//	netaiops_flow_capture_failures_total       capture points that could not open, or failed
//	netaiops_flow_packets_total{capture}       packets decoded
//	netaiops_flow_bytes_total{capture}         their bytes on the wire
//	netaiops_flow_new_total{capture}           flows created
//	netaiops_flow_active{capture}              flows in the table at the last interval's end
//	netaiops_flow_decode_errors_total{capture} frames that could not be decoded
//	netaiops_flow_table_evictions_total{capture} flows evicted because the table was full
//	netaiops_flow_kernel_drops_total{capture}  packets the kernel dropped (live capture)
var (
	descFlowIntervals = prometheus.NewDesc("netaiops_flow_intervals_total", "Capture intervals the detection engine judged.", nil, nil)
	descFlowFailures  = prometheus.NewDesc("netaiops_flow_capture_failures_total", "Capture points that could not open, or failed while running.", nil, nil)
	descFlowPackets   = prometheus.NewDesc("netaiops_flow_packets_total", "Packets decoded.", []string{"capture"}, nil)
	descFlowBytes     = prometheus.NewDesc("netaiops_flow_bytes_total", "Bytes on the wire of the packets decoded.", []string{"capture"}, nil)
	descFlowNew       = prometheus.NewDesc("netaiops_flow_new_total", "Flows created.", []string{"capture"}, nil)
	descFlowActive    = prometheus.NewDesc("netaiops_flow_active", "Flows in the table at the end of the last interval.", []string{"capture"}, nil)
	descFlowDecodeErr = prometheus.NewDesc("netaiops_flow_decode_errors_total", "Frames that could not be decoded.", []string{"capture"}, nil)
	descFlowEvicted   = prometheus.NewDesc("netaiops_flow_table_evictions_total", "Flows evicted because the flow table was full.", []string{"capture"}, nil)
	descFlowDrops     = prometheus.NewDesc("netaiops_flow_kernel_drops_total", "Packets the kernel dropped for lack of ring space (live capture).", []string{"capture"}, nil)
)

// flowCollector exports the flow capture's counters.
type flowCollector struct{ a *Agent }

func (c flowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFlowIntervals, descFlowFailures, descFlowPackets, descFlowBytes, descFlowNew,
		descFlowActive, descFlowDecodeErr, descFlowEvicted, descFlowDrops} {
		ch <- d
	}
}

func (c flowCollector) Collect(ch chan<- prometheus.Metric) {
	f := &c.a.flows
	ch <- prometheus.MustNewConstMetric(descFlowIntervals, prometheus.CounterValue, float64(f.intervals.Load()))
	ch <- prometheus.MustNewConstMetric(descFlowFailures, prometheus.CounterValue, float64(f.failures.Load()))
	caps := f.caps.Load()
	if caps == nil {
		return
	}
	for _, cs := range *caps {
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), cs.name)
		}
		counter(descFlowPackets, cs.packets.Load())
		counter(descFlowBytes, cs.bytes.Load())
		counter(descFlowNew, cs.news.Load())
		counter(descFlowDecodeErr, cs.decodeErrors.Load())
		counter(descFlowEvicted, cs.evicted.Load())
		counter(descFlowDrops, cs.src.Stats().KernelDrops)
		ch <- prometheus.MustNewConstMetric(descFlowActive, prometheus.GaugeValue, float64(cs.active.Load()), cs.name)
	}
}
