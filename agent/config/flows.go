package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of the flows section.
const (
	DefaultFlowSnaplen       = 128
	DefaultFlowRingMB        = 16
	DefaultFlowInterval      = 10 * time.Second
	DefaultFlowTopN          = 10
	DefaultFlowKeepFiringFor = time.Minute
	ReplayMax                = "max"      // replay_speed: as fast as the file can be read
	ReplayRecorded           = "recorded" // replay_speed: at the speed the packets were captured

	// DefaultHighFlowActive: high_flow_count's ceiling on the flows in the
	// table is half the table's capacity (max_flows, 1Mi by default), a
	// warning well before the table must evict. A fixed 100 000 was a
	// tenth of the table, and a normal 6 000 new flows/s edge holds that
	// many with the 30s idle timeout.
	DefaultHighFlowActive    = DefaultMaxFlows / 2
	DefaultMaxFlows          = 1 << 20
	DefaultHighFlowNewPerSec = 10000.0
	DefaultHighFlowMinActive = 1000
	DefaultHighFlowMinRatio  = 1.5
	DefaultMinScoreFlows     = 0.9
	DefaultScanDstPorts      = 100.0
	DefaultScanDstAddrs      = 200.0
	DefaultScanUnanswered    = 0.5
	DefaultReflectionFlows   = 1000
	DefaultReflectionSources = 20.0
	DefaultSYNFloodSYNs      = 100
	DefaultSYNFloodHalfOpen  = 100
	DefaultSpikeMinBytes     = 125000.0 // 1 Mbit/s
	DefaultCaptureDrops      = 100
)

// Flows configures flow capture (collector/flow) and the flow rules; a nil
// *Flows (the key absent) captures nothing. Issues of a capture point have
// the device "<agent.id>:<name>", name being the interface, or the base
// name of the pcap file.
//
//	flows:
//	  interfaces: [eth1]          # live capture points (AF_PACKET, needs CAP_NET_RAW)
//	  pcap_files: [trace.pcap]    # replayed once at start (pcap or pcapng)
//	  replay_speed: max           # max (default: as fast as read) or recorded
//	  bpf: "not port 22"          # capture filter, also applied to replayed files
//	  snaplen: 128                # bytes kept per live frame, 64-65535
//	  promiscuous: false
//	  ring_mb: 16                 # live capture ring, 1-1024 MiB
//	  interval: 10s               # feature interval: rules judge each one; at least 1s
//	  idle_timeout: 30s           # flow table: idle and active timeouts, size bound
//	  active_timeout: 30m
//	  max_flows: 1048576
//	  top_n: 10                   # sources and destinations reported per interval
//	  rules:                      # thresholds are per interval unless named per second
//	    keep_firing_for: 1m       # an issue resolves after its condition was false this long
//	    high_flow_count: {active_flows: 524288, new_flows_per_second: 10000, anomaly: true, min_active: 1000, min_score: 0.9, min_ratio: 1.5}
//	    port_scan: {dst_ports: 100, dst_addrs: 200, unanswered: 0.5}
//	    syn_flood: {syns: 100, half_open: 100}
//	    udp_reflection: {flows: 1000, sources: 20}
//	    traffic_spike: {min_score: 0.9, min_bytes_per_second: 125000}
//	    capture_drops: {drops: 100}
//
// Every rule also takes enabled: false.
type Flows struct {
	Interfaces    []string      `yaml:"interfaces,omitempty"`
	PcapFiles     []string      `yaml:"pcap_files,omitempty"`
	ReplaySpeed   string        `yaml:"replay_speed"`
	BPF           string        `yaml:"bpf,omitempty"`
	Snaplen       int           `yaml:"snaplen"`
	Promiscuous   bool          `yaml:"promiscuous"`
	RingMB        int           `yaml:"ring_mb"`
	Interval      time.Duration `yaml:"interval"`
	IdleTimeout   time.Duration `yaml:"idle_timeout,omitempty"`   // 0: the flow table's default (30s)
	ActiveTimeout time.Duration `yaml:"active_timeout,omitempty"` // 0: the flow table's default (30m)
	MaxFlows      int           `yaml:"max_flows,omitempty"`      // 0: the flow table's default (1Mi)
	TopN          int           `yaml:"top_n"`
	Rules         FlowRules     `yaml:"rules"`
}

// FlowRules tunes the flow rules; zero values mean the defaults.
type FlowRules struct {
	KeepFiringFor time.Duration     `yaml:"keep_firing_for"`
	HighFlowCount HighFlowCountRule `yaml:"high_flow_count"`
	PortScan      PortScanRule      `yaml:"port_scan"`
	SYNFlood      SYNFloodRule      `yaml:"syn_flood"`
	TrafficSpike  TrafficSpikeRule  `yaml:"traffic_spike"`
	CaptureDrops  CaptureDropsRule  `yaml:"capture_drops"`
	Reflection    ReflectionRule    `yaml:"udp_reflection"`
}

// HighFlowCountRule opens high_flow_count when the flows in the table at
// the end of an interval exceed ActiveFlows (default: half of max_flows), new flows per second exceed
// NewFlowsPerSecond, or (Anomaly) the active flows are anomalously high for
// the capture point's history while at least MinActive.
type HighFlowCountRule struct {
	Enabled           *bool   `yaml:"enabled,omitempty"`
	ActiveFlows       int     `yaml:"active_flows"`
	NewFlowsPerSecond float64 `yaml:"new_flows_per_second"`
	Anomaly           *bool   `yaml:"anomaly,omitempty"` // nil: true
	MinActive         int     `yaml:"min_active"`
	MinScore          float64 `yaml:"min_score"`
	MinRatio          float64 `yaml:"min_ratio"` // the anomaly also needs this many times the expected count
}

// PortScanRule opens port_scan for a source that, in one interval, opened
// flows to at least DstPorts distinct destination ports or DstAddrs
// distinct destination addresses, of which at least the share Unanswered
// got no answer (refused or silent): busy clients reach many addresses
// too, but are answered.
type PortScanRule struct {
	Enabled    *bool   `yaml:"enabled,omitempty"`
	DstPorts   float64 `yaml:"dst_ports"`
	DstAddrs   float64 `yaml:"dst_addrs"`
	Unanswered float64 `yaml:"unanswered"`
}

// ReflectionRule opens udp_reflection for a destination that, in one
// interval, received at least Flows flows it did not ask for from the
// service ports of UDP amplifiers (DNS, NTP, SNMP, SSDP, CLDAP, memcached,
// chargen) of at least Sources distinct sources.
type ReflectionRule struct {
	Enabled *bool   `yaml:"enabled,omitempty"`
	Flows   int     `yaml:"flows"`
	Sources float64 `yaml:"sources"`
}

// SYNFloodRule opens syn_flood for a destination that, in one interval, was
// sent at least SYNs flows opened by a bare SYN of which at least HalfOpen,
// and at least half, never completed their handshake (SYNs of sources
// scanning the destination not counted).
type SYNFloodRule struct {
	Enabled  *bool `yaml:"enabled,omitempty"`
	SYNs     int   `yaml:"syns"`
	HalfOpen int   `yaml:"half_open"`
}

// TrafficSpikeRule opens traffic_spike when an interval's bytes per second
// score at least MinScore on the anomaly model of the capture point's
// history, above it, and reach MinBytesPerSecond.
type TrafficSpikeRule struct {
	Enabled           *bool   `yaml:"enabled,omitempty"`
	MinScore          float64 `yaml:"min_score"`
	MinBytesPerSecond float64 `yaml:"min_bytes_per_second"`
}

// CaptureDropsRule opens capture_drops when the kernel dropped at least
// Drops packets of a live capture in one interval.
type CaptureDropsRule struct {
	Enabled *bool `yaml:"enabled,omitempty"`
	Drops   int   `yaml:"drops"`
}

// On reports whether a rule's enabled key leaves it on (absent: on).
func On(enabled *bool) bool { return enabled == nil || *enabled }

// CaptureName is the name of a pcap file's capture point: its base name.
func CaptureName(pcapFile string) string { return filepath.Base(pcapFile) }

// setFlowDefaults fills the flows section's keys the file left out.
func (c *Config) setFlowDefaults() {
	f := c.Flows
	if f == nil {
		return
	}
	if f.ReplaySpeed == "" && !c.isSet("flows.replay_speed") {
		f.ReplaySpeed = ReplayMax
	}
	if !c.isSet("flows.snaplen") {
		f.Snaplen = DefaultFlowSnaplen
	}
	if !c.isSet("flows.ring_mb") {
		f.RingMB = DefaultFlowRingMB
	}
	if !c.isSet("flows.interval") {
		f.Interval = DefaultFlowInterval
	}
	if !c.isSet("flows.top_n") {
		f.TopN = DefaultFlowTopN
	}
	r := &f.Rules
	setDefault(c, "keep_firing_for", &r.KeepFiringFor, DefaultFlowKeepFiringFor)
	active := DefaultHighFlowActive
	if f.MaxFlows > 0 {
		active = max(f.MaxFlows/2, 1)
	}
	setDefault(c, "high_flow_count.active_flows", &r.HighFlowCount.ActiveFlows, active)
	setDefault(c, "high_flow_count.new_flows_per_second", &r.HighFlowCount.NewFlowsPerSecond, DefaultHighFlowNewPerSec)
	setDefault(c, "high_flow_count.min_active", &r.HighFlowCount.MinActive, DefaultHighFlowMinActive)
	setDefault(c, "high_flow_count.min_score", &r.HighFlowCount.MinScore, DefaultMinScoreFlows)
	setDefault(c, "high_flow_count.min_ratio", &r.HighFlowCount.MinRatio, DefaultHighFlowMinRatio)
	setDefault(c, "port_scan.dst_ports", &r.PortScan.DstPorts, DefaultScanDstPorts)
	setDefault(c, "port_scan.dst_addrs", &r.PortScan.DstAddrs, DefaultScanDstAddrs)
	setDefault(c, "port_scan.unanswered", &r.PortScan.Unanswered, DefaultScanUnanswered)
	setDefault(c, "udp_reflection.flows", &r.Reflection.Flows, DefaultReflectionFlows)
	setDefault(c, "udp_reflection.sources", &r.Reflection.Sources, DefaultReflectionSources)
	setDefault(c, "syn_flood.syns", &r.SYNFlood.SYNs, DefaultSYNFloodSYNs)
	setDefault(c, "syn_flood.half_open", &r.SYNFlood.HalfOpen, DefaultSYNFloodHalfOpen)
	setDefault(c, "traffic_spike.min_score", &r.TrafficSpike.MinScore, DefaultMinScoreFlows)
	setDefault(c, "traffic_spike.min_bytes_per_second", &r.TrafficSpike.MinBytesPerSecond, DefaultSpikeMinBytes)
	setDefault(c, "capture_drops.drops", &r.CaptureDrops.Drops, DefaultCaptureDrops)
}

// setDefault sets *p to d unless the file set flows.rules.key.
func setDefault[T any](c *Config, key string, p *T, d T) {
	if !c.isSet("flows.rules." + key) {
		*p = d
	}
}

// validateFlows checks the flows section.
func (c *Config) validateFlows(bad func(path, format string, args ...any)) {
	f := c.Flows
	if f == nil {
		return
	}
	names := map[string]string{} // capture name -> key path of its first use
	capture := func(path, name string) {
		if first, dup := names[name]; dup {
			bad(path, "capture point %q already named by %s (issues of both would share a device)", name, first)
			return
		}
		names[name] = path
	}
	for i, n := range f.Interfaces {
		p := fmt.Sprintf("flows.interfaces[%d]", i)
		if n == "" || len(n) > 15 || strings.ContainsAny(n, " \t\n/:") {
			bad(p, "bad interface name %q: 1-15 characters, no whitespace, \"/\" or \":\"", n)
			continue
		}
		capture(p, n)
	}
	for i, file := range f.PcapFiles {
		p := fmt.Sprintf("flows.pcap_files[%d]", i)
		if strings.TrimSpace(file) == "" {
			bad(p, "empty file name")
			continue
		}
		if n := CaptureName(file); strings.ContainsAny(n, " \t\n:") {
			bad(p, "bad file name %q: the base name names the capture point and must not contain whitespace or \":\"", n)
			continue
		}
		capture(p, CaptureName(file))
	}
	for i, t := range c.Targets {
		if capture, ok := strings.CutPrefix(t.Name, c.Agent.ID+":"); ok && names[capture] != "" {
			bad(fmt.Sprintf("targets[%d].name", i), "%q is the device of the capture point at %s; rename the target", t.Name, names[capture])
		}
	}
	if len(f.Interfaces) == 0 && len(f.PcapFiles) == 0 {
		bad("flows", "no capture point: list interfaces or pcap_files, or leave flows out")
	}
	if f.ReplaySpeed != ReplayMax && f.ReplaySpeed != ReplayRecorded {
		bad("flows.replay_speed", "bad replay speed %q (allowed: %s, %s)", f.ReplaySpeed, ReplayMax, ReplayRecorded)
	}
	if f.Snaplen < 64 || f.Snaplen > 65535 {
		bad("flows.snaplen", "must be between 64 and 65535, got %d", f.Snaplen)
	}
	if f.RingMB < 1 || f.RingMB > 1024 {
		bad("flows.ring_mb", "must be between 1 and 1024, got %d", f.RingMB)
	}
	if f.Interval < time.Second {
		bad("flows.interval", "must be at least 1s, got %s", f.Interval)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"idle_timeout", f.IdleTimeout}, {"active_timeout", f.ActiveTimeout}} {
		if d.v < 0 || (d.v == 0 && c.isSet("flows."+d.key)) {
			bad("flows."+d.key, "must be positive, got %s (absent: the flow table's default)", d.v)
		}
	}
	// A flow's records are cut every active_timeout; one shorter than
	// idle_timeout would cut a silent flow before it could go idle.
	idle, active := f.IdleTimeout, f.ActiveTimeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	if active <= 0 {
		active = 30 * time.Minute
	}
	if f.IdleTimeout >= 0 && f.ActiveTimeout > 0 && active < idle {
		bad("flows.active_timeout", "must not be shorter than idle_timeout (%s), got %s", idle, active)
	}
	if f.MaxFlows < 0 || (f.MaxFlows == 0 && c.isSet("flows.max_flows")) {
		bad("flows.max_flows", "must be at least 1, got %d (absent: 1048576)", f.MaxFlows)
	}
	if f.TopN < 1 || f.TopN > 1000 {
		bad("flows.top_n", "must be between 1 and 1000, got %d", f.TopN)
	}
	r := f.Rules
	if r.KeepFiringFor < 0 {
		bad("flows.rules.keep_firing_for", "must not be negative, got %s", r.KeepFiringFor)
	}
	positive := func(key string, v float64) {
		if v <= 0 {
			bad("flows.rules."+key, "must be positive, got %s (to turn the rule off, set enabled: false)", formatNumber(v))
		}
	}
	score := func(key string, v float64) {
		if v <= 0 || v > 1 {
			bad("flows.rules."+key, "must be in (0, 1], got %s", formatNumber(v))
		}
	}
	h := r.HighFlowCount
	positive("high_flow_count.active_flows", float64(h.ActiveFlows))
	positive("high_flow_count.new_flows_per_second", h.NewFlowsPerSecond)
	if h.MinActive < 0 {
		bad("flows.rules.high_flow_count.min_active", "must not be negative, got %d", h.MinActive)
	}
	score("high_flow_count.min_score", h.MinScore)
	if h.MinRatio < 1 {
		bad("flows.rules.high_flow_count.min_ratio", "must be at least 1, got %s", formatNumber(h.MinRatio))
	}
	positive("port_scan.dst_ports", r.PortScan.DstPorts)
	positive("port_scan.dst_addrs", r.PortScan.DstAddrs)
	score("port_scan.unanswered", r.PortScan.Unanswered)
	positive("udp_reflection.flows", float64(r.Reflection.Flows))
	positive("udp_reflection.sources", r.Reflection.Sources)
	positive("syn_flood.syns", float64(r.SYNFlood.SYNs))
	if r.SYNFlood.HalfOpen < 0 {
		bad("flows.rules.syn_flood.half_open", "must not be negative, got %d", r.SYNFlood.HalfOpen)
	}
	score("traffic_spike.min_score", r.TrafficSpike.MinScore)
	if r.TrafficSpike.MinBytesPerSecond < 0 {
		bad("flows.rules.traffic_spike.min_bytes_per_second", "must not be negative, got %s", formatNumber(r.TrafficSpike.MinBytesPerSecond))
	}
	positive("capture_drops.drops", float64(r.CaptureDrops.Drops))
}

func formatNumber(v float64) string { return fmt.Sprint(v) }
