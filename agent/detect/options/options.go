// Package options turns the agent's configuration into detection engine
// options. It is apart from agent/detect so that the engine depends on
// nothing but the collector's types, and config changes never break it.
package options

import (
	"slices"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
)

// FromConfig turns the agent's configuration (snmp.unreachable_after
// and the rules section) into engine options. The configured rules come
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
	return o
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
