package config

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The flows section loads with its values; what it leaves out gets the
// defaults; a file without it captures nothing.
func TestFlowKeys(t *testing.T) {
	c, err := Load("testdata/flows/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flows
	if f == nil {
		t.Fatal("flows = nil")
	}
	if len(c.Targets) != 0 {
		t.Errorf("targets = %+v, want none", c.Targets)
	}
	if !slices.Equal(f.Interfaces, []string{"eth1", "eth2"}) || !slices.Equal(f.PcapFiles, []string{"/var/tmp/trace.pcapng"}) ||
		f.ReplaySpeed != ReplayRecorded || f.BPF != "not port 22" || f.Snaplen != 256 || !f.Promiscuous || f.RingMB != 8 ||
		f.Interval != 5*time.Second || f.IdleTimeout != time.Minute || f.ActiveTimeout != 10*time.Minute || f.MaxFlows != 100000 || f.TopN != 20 {
		t.Errorf("flows = %+v", f)
	}
	r := f.Rules
	if r.KeepFiringFor != 2*time.Minute || r.HighFlowCount.ActiveFlows != 5000 || r.HighFlowCount.NewFlowsPerSecond != 300 ||
		On(r.HighFlowCount.Anomaly) || r.HighFlowCount.MinActive != DefaultHighFlowMinActive || r.HighFlowCount.MinScore != DefaultMinScoreFlows ||
		r.PortScan.DstPorts != 30 || r.PortScan.DstAddrs != 50 || r.SYNFlood.SYNs != 40 || r.SYNFlood.HalfOpen != 0 ||
		On(r.TrafficSpike.Enabled) || r.TrafficSpike.MinScore != DefaultMinScoreFlows || r.CaptureDrops.Drops != 1 || !On(r.PortScan.Enabled) {
		t.Errorf("flows.rules = %+v", r)
	}
	if _, err := Parse([]byte(c.Redacted()), "redacted.yaml"); err != nil {
		t.Errorf("Redacted() does not load: %v\n%s", err, c.Redacted())
	}

	d, err := Parse([]byte("controller: {address: \"c:1\", insecure: true}\ntargets: []\nflows: {pcap_files: [x.pcap]}\n"), "mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Flows{PcapFiles: []string{"x.pcap"}, ReplaySpeed: ReplayMax, Snaplen: DefaultFlowSnaplen, RingMB: DefaultFlowRingMB,
		Interval: DefaultFlowInterval, TopN: DefaultFlowTopN, Rules: FlowRules{
			KeepFiringFor: DefaultFlowKeepFiringFor,
			HighFlowCount: HighFlowCountRule{ActiveFlows: DefaultHighFlowActive, NewFlowsPerSecond: DefaultHighFlowNewPerSec,
				MinActive: DefaultHighFlowMinActive, MinScore: DefaultMinScoreFlows, MinRatio: DefaultHighFlowMinRatio},
			PortScan:     PortScanRule{DstPorts: DefaultScanDstPorts, DstAddrs: DefaultScanDstAddrs, Unanswered: DefaultScanUnanswered},
			Reflection:   ReflectionRule{Flows: DefaultReflectionFlows, Sources: DefaultReflectionSources},
			SYNFlood:     SYNFloodRule{SYNs: DefaultSYNFloodSYNs, HalfOpen: DefaultSYNFloodHalfOpen},
			TrafficSpike: TrafficSpikeRule{MinScore: DefaultMinScoreFlows, MinBytesPerSecond: DefaultSpikeMinBytes},
			CaptureDrops: CaptureDropsRule{Drops: DefaultCaptureDrops},
		}}
	if d.Flows == nil || !equalFlows(*d.Flows, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", d.Flows, want)
	}
	if CaptureName("/var/tmp/a/trace.pcap") != "trace.pcap" {
		t.Errorf("CaptureName = %q", CaptureName("/var/tmp/a/trace.pcap"))
	}

	e, err := Parse([]byte("controller: {address: \"c:1\", insecure: true}\ntargets: [{name: a, address: a.example}]\n"), "mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if e.Flows != nil {
		t.Errorf("flows without the key = %+v, want nil", e.Flows)
	}
}

func equalFlows(a, b Flows) bool {
	return slices.Equal(a.Interfaces, b.Interfaces) && slices.Equal(a.PcapFiles, b.PcapFiles) &&
		a.ReplaySpeed == b.ReplaySpeed && a.BPF == b.BPF && a.Snaplen == b.Snaplen && a.Promiscuous == b.Promiscuous &&
		a.RingMB == b.RingMB && a.Interval == b.Interval && a.IdleTimeout == b.IdleTimeout && a.ActiveTimeout == b.ActiveTimeout &&
		a.MaxFlows == b.MaxFlows && a.TopN == b.TopN && a.Rules.KeepFiringFor == b.Rules.KeepFiringFor &&
		a.Rules.HighFlowCount.ActiveFlows == b.Rules.HighFlowCount.ActiveFlows &&
		a.Rules.HighFlowCount.NewFlowsPerSecond == b.Rules.HighFlowCount.NewFlowsPerSecond &&
		On(a.Rules.HighFlowCount.Anomaly) == On(b.Rules.HighFlowCount.Anomaly) &&
		a.Rules.HighFlowCount.MinActive == b.Rules.HighFlowCount.MinActive &&
		a.Rules.HighFlowCount.MinScore == b.Rules.HighFlowCount.MinScore && a.Rules.HighFlowCount.MinRatio == b.Rules.HighFlowCount.MinRatio &&
		a.Rules.PortScan.DstPorts == b.Rules.PortScan.DstPorts && a.Rules.PortScan.DstAddrs == b.Rules.PortScan.DstAddrs &&
		a.Rules.SYNFlood == b.Rules.SYNFlood && a.Rules.TrafficSpike.MinScore == b.Rules.TrafficSpike.MinScore &&
		a.Rules.TrafficSpike.MinBytesPerSecond == b.Rules.TrafficSpike.MinBytesPerSecond &&
		a.Rules.CaptureDrops.Drops == b.Rules.CaptureDrops.Drops &&
		a.Rules.PortScan.Unanswered == b.Rules.PortScan.Unanswered && a.Rules.Reflection.Flows == b.Rules.Reflection.Flows &&
		a.Rules.Reflection.Sources == b.Rules.Reflection.Sources
}

// One fixture per rule of the flows section, with its exact message.
func TestInvalidFlows(t *testing.T) {
	tests := map[string]string{
		"invalid-capture-duplicate.yaml": `:8: flows.pcap_files[1]: capture point "trace.pcap" already named by flows.pcap_files[0] (issues of both would share a device)`,
		"invalid-active-timeout.yaml":    `:7: flows.active_timeout: must not be shorter than idle_timeout (1m0s), got 10s`,
		"invalid-unanswered.yaml":        `:7: flows.rules.port_scan.unanswered: must be in (0, 1], got 1.5`,
		"invalid-reflection.yaml":        `:7: flows.rules.udp_reflection.sources: must be positive, got -3 (to turn the rule off, set enabled: false)`,
		"invalid-min-ratio.yaml":         `:7: flows.rules.high_flow_count.min_ratio: must be at least 1, got 0.5`,
		"invalid-half-open.yaml":         `:7: flows.rules.syn_flood.half_open: must not be negative, got -1`,
		"invalid-idle-timeout.yaml":      `:6: flows.idle_timeout: must be positive, got 0s (absent: the flow table's default)`,
		"invalid-interface-name.yaml":    `:5: flows.interfaces[1]: bad interface name "very-long-interface-name": 1-15 characters, no whitespace, "/" or ":"`,
		"invalid-interval.yaml":          `:6: flows.interval: must be at least 1s, got 500ms`,
		"invalid-keep-firing.yaml":       `:7: flows.rules.keep_firing_for: must not be negative, got -1m0s`,
		"invalid-max-flows.yaml":         `:6: flows.max_flows: must be at least 1, got -5 (absent: 1048576)`,
		"invalid-min-active.yaml":        `:8: flows.rules.high_flow_count.min_active: must not be negative, got -1`,
		"invalid-min-bytes.yaml":         `:7: flows.rules.traffic_spike.min_bytes_per_second: must not be negative, got -1`,
		"invalid-min-score.yaml":         `:8: flows.rules.traffic_spike.min_score: must be in (0, 1], got 1.5`,
		"invalid-no-capture.yaml":        `:4: flows: no capture point: list interfaces or pcap_files, or leave flows out`,
		"invalid-pcap-file-empty.yaml":   `:5: flows.pcap_files[0]: empty file name`,
		"invalid-pcap-file-name.yaml":    `:5: flows.pcap_files[0]: bad file name "10:00.pcap": the base name names the capture point and must not contain whitespace or ":"`,
		"invalid-replay-speed.yaml":      `:6: flows.replay_speed: bad replay speed "realtime" (allowed: max, recorded)`,
		"invalid-ring-mb.yaml":           `:6: flows.ring_mb: must be between 1 and 1024, got 0`,
		"invalid-snaplen.yaml":           `:6: flows.snaplen: must be between 64 and 65535, got 32`,
		"invalid-threshold.yaml":         `:7: flows.rules.port_scan.dst_ports: must be positive, got 0 (to turn the rule off, set enabled: false)`,
		"invalid-top-n.yaml":             `:6: flows.top_n: must be between 1 and 1000, got 0`,
		"invalid-unknown-key.yaml":       `:7: flows.rules.port_scan.ports: unknown key (known: enabled, dst_ports, dst_addrs, unanswered)`,
		"invalid-target-is-capture.yaml": `:4: targets[0].name: "edge-1:eth1" is the device of the capture point at flows.interfaces[0]; rename the target`,
	}
	files, err := filepath.Glob("testdata/flows/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d fixtures, %d expected messages", len(files), len(tests))
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expected message", f)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := "testdata/flows/" + name
			_, err := Load(path)
			if err == nil || err.Error() != path+want {
				t.Errorf("error:\n got: %v\nwant: %s", err, path+want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *config.Error", err)
			}
		})
	}
}
