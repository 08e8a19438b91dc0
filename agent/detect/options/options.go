// Package options turns the agent's configuration into detection engine
// options. It is apart from agent/detect so that the engine depends on
// nothing but the collector's types, and config changes never break it.
package options

import (
	"slices"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
)

// FromConfig turns the agent's configuration (snmp.unreachable_after,
// the rules section and flows.rules) into engine options. The configured rules come
// before the shipped ones, so that for one kind and one series they win;
// with rules.defaults false only they run.
func FromConfig(c *config.Config) detect.Options {
	r := c.Rules
	o := detect.Options{
		UnreachableAfter: c.SNMP.UnreachableAfter,
		Thresholds:       []detect.ThresholdRule{},
		Anomalies:        []detect.AnomalyRule{},
		Flap:             detect.FlapOptions{Window: r.Flapping.Window, High: r.Flapping.High, Low: r.Flapping.Low},
		Settle:           r.Settle,
		CorrelationWait:  r.CorrelationWait,
		Roots:            slices.Clone(r.Topology.Roots),
		MaxAnomalySeries: r.MaxAnomalySeries,
	}
	if o.CorrelationWait == 0 {
		o.CorrelationWait = -1 // configured 0: no wait (0 in Options means the default)
	}
	for _, l := range r.Topology.Links {
		o.Topology = append(o.Topology, detect.Link{Parent: l.Parent, Port: l.Port, Child: l.Child})
	}
	for _, t := range r.Thresholds {
		tr := detect.ThresholdRule{Kind: t.Kind, Metric: t.Metric, Match: t.Match, Critical: t.Critical, Clear: t.Clear,
			For: t.For, KeepFiringFor: t.KeepFiringFor, Severity: severity(t.Severity)}
		switch {
		case t.Above != nil:
			tr.Threshold = *t.Above
		case t.Below != nil:
			tr.Threshold, tr.Below = *t.Below, true
		}
		o.Thresholds = append(o.Thresholds, tr)
	}
	for _, a := range r.Anomalies {
		o.Anomalies = append(o.Anomalies, detect.AnomalyRule{Metric: a.Metric, Match: a.Match, MinScore: a.MinScore,
			MinDeviation: a.MinDeviation, For: a.For, KeepFiringFor: a.KeepFiringFor, Severity: severity(a.Severity)})
	}
	if r.Defaults == nil || *r.Defaults {
		o.Thresholds = append(o.Thresholds, detect.DefaultThresholds()...)
		o.Anomalies = append(o.Anomalies, detect.DefaultAnomalies()...)
	}
	if c.Flows != nil {
		o.Flows = flowOptions(c.Flows.Rules)
	}
	return o
}

// flowOptions turns flows.rules into the flow rules' options. A minimum
// the file sets to 0 becomes negative: none (0 in FlowOptions means the
// default).
func flowOptions(r config.FlowRules) detect.FlowOptions {
	none := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return v
	}
	h := r.HighFlowCount
	return detect.FlowOptions{
		KeepFiringFor: r.KeepFiringFor,
		HighFlowCount: detect.HighFlowCountOptions{Disabled: !config.On(h.Enabled), ActiveFlows: h.ActiveFlows,
			NewFlowsPerSecond: h.NewFlowsPerSecond, NoAnomaly: !config.On(h.Anomaly), MinActive: int(none(float64(h.MinActive))),
			MinScore: h.MinScore, MinRatio: h.MinRatio},
		PortScan: detect.PortScanOptions{Disabled: !config.On(r.PortScan.Enabled), DstPorts: r.PortScan.DstPorts,
			DstAddrs: r.PortScan.DstAddrs, Unanswered: r.PortScan.Unanswered},
		Reflection: detect.ReflectionOptions{Disabled: !config.On(r.Reflection.Enabled), Flows: uint64(max(r.Reflection.Flows, 0)),
			Sources: r.Reflection.Sources},
		SYNFlood: detect.SYNFloodOptions{Disabled: !config.On(r.SYNFlood.Enabled), SYNs: uint64(max(r.SYNFlood.SYNs, 0)),
			HalfOpen: int(none(float64(r.SYNFlood.HalfOpen)))},
		TrafficSpike: detect.TrafficSpikeOptions{Disabled: !config.On(r.TrafficSpike.Enabled), MinScore: r.TrafficSpike.MinScore,
			MinBytesPerSecond: none(r.TrafficSpike.MinBytesPerSecond)},
		CaptureDrops: detect.CaptureDropsOptions{Disabled: !config.On(r.CaptureDrops.Enabled), Drops: uint64(max(r.CaptureDrops.Drops, 0))},
	}
}

func severity(s string) detect.Severity {
	switch s {
	case "major":
		return detect.SeverityMajor
	case "critical":
		return detect.SeverityCritical
	}
	return detect.SeverityWarning
}
