package options

import (
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/collector"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func poll(device string, i int, samples ...collector.Sample) collector.Poll {
	at := t0.Add(time.Duration(i) * 10 * time.Second)
	p := collector.Poll{Target: collector.Target{Name: device}, Time: at}
	for _, s := range samples {
		s.Device, s.Time = device, at
		p.Samples = append(p.Samples, s)
	}
	return p
}

func sample(metric string, kind collector.MetricKind, v float64) collector.Sample {
	return collector.Sample{Metric: metric, Value: v, Kind: kind, Labels: collector.NewLabels("ifIndex", "1", "ifName", "ge-0/0/1")}
}

func TestFromConfig(t *testing.T) {
	c, err := config.Load("../../config/testdata/rules/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := FromConfig(c)
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(o.Thresholds) != 2 || len(o.Anomalies) != 1 || o.CorrelationWait != -1 || o.Settle != 2*time.Minute ||
		o.Flap != (detect.FlapOptions{Window: 11, High: 30, Low: 10.5}) || len(o.Topology) != 1 || o.Roots[0] != "core-sw1" || o.MaxAnomalySeries != 100000 {
		t.Fatalf("options = %+v", o)
	}
	if r := o.Thresholds[1]; !r.Below || r.Threshold != -20 || *r.Critical != -25 || r.Severity != detect.SeverityWarning {
		t.Errorf("below rule = %+v", r)
	}
	if r := o.Thresholds[0]; r.Severity != detect.SeverityMajor || r.Threshold != 80 || r.Match["device"] != "core-.*" {
		t.Errorf("above rule = %+v", r)
	}
	// The configured rule wins over the shipped one for its interfaces. It
	// names ifInUtilization, which is the collector's if_in_utilization.
	e := detect.New("edge-1", o)
	var got []string
	for i := 0; i <= 31; i++ {
		ss := []collector.Sample{sample("ifHighSpeed", collector.Gauge, 1000), sample("ifHCInOctets", collector.Counter, float64(i)*10*106e6)}
		if i > 0 { // the collector's utilisation from the second poll on: 106e6 B/s of 1 Gb/s
			ss = append(ss, sample(detect.MetricInUtilization, collector.Rate, 84.8))
		}
		p := poll("core-sw1", i, ss...)
		for _, c := range e.Observe(p) {
			got = append(got, c.Type.String()+" "+c.Issue.Fingerprint+" "+c.Issue.Severity.String())
		}
	}
	if want := "opened high_utilization/core-sw1/ge-0/0/1 major"; strings.Join(got, "\n") != want {
		t.Errorf("changes %v, want %s", got, want)
	}
	// With the defaults on, the shipped rules follow the configured ones.
	yes := true
	c.Rules.Defaults = &yes
	if o := FromConfig(c); len(o.Thresholds) != 2+len(detect.DefaultThresholds()) || len(o.Anomalies) != 1+len(detect.DefaultAnomalies()) {
		t.Errorf("with defaults: %d thresholds, %d anomaly rules", len(o.Thresholds), len(o.Anomalies))
	}
}

// flows.rules reach the flow rules; minimums set to 0 mean none.
func TestFlowOptions(t *testing.T) {
	c, err := config.Load("../../config/testdata/flows/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := FromConfig(c).Flows
	want := detect.FlowOptions{
		KeepFiringFor: 2 * time.Minute,
		HighFlowCount: detect.HighFlowCountOptions{ActiveFlows: 5000, NewFlowsPerSecond: 300, NoAnomaly: true,
			MinActive: config.DefaultHighFlowMinActive, MinScore: config.DefaultMinScoreFlows, MinRatio: config.DefaultHighFlowMinRatio},
		PortScan:     detect.PortScanOptions{DstPorts: 30, DstAddrs: 50, Unanswered: config.DefaultScanUnanswered},
		SYNFlood:     detect.SYNFloodOptions{SYNs: 40, HalfOpen: -1},
		Reflection:   detect.ReflectionOptions{Flows: config.DefaultReflectionFlows, Sources: config.DefaultReflectionSources},
		TrafficSpike: detect.TrafficSpikeOptions{Disabled: true, MinScore: config.DefaultMinScoreFlows, MinBytesPerSecond: config.DefaultSpikeMinBytes},
		CaptureDrops: detect.CaptureDropsOptions{Drops: 1},
	}
	if o != want {
		t.Errorf("flow options\n got %+v\nwant %+v", o, want)
	}
	if o := FromConfig(&config.Config{}).Flows; o != (detect.FlowOptions{}) {
		t.Errorf("without flows: %+v", o)
	}
}
