package config

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Defaults of the rules section.
const (
	DefaultSettle          = time.Minute
	DefaultCorrelationWait = 2
	DefaultFlapWindow      = 21
	DefaultFlapHigh        = 20.0
	DefaultFlapLow         = 5.0
	// DefaultMaxAnomalySeries bounds the series scored for anomalies
	// (about 1 KB each).
	DefaultMaxAnomalySeries = 8192
)

// Rules tunes the detection engine (agent/detect): thresholds, anomaly
// rules, flap detection and correlation. Every key is optional.
//
//	rules:
//	  defaults: true              # keep the shipped rules after these (default true)
//	  settle: 1m                  # issues of a device that just came back or rebooted stay suppressed this long
//	  correlation_wait: 2         # extra failed polls an unexplained device_unreachable waits for its upstream
//	  max_anomaly_series: 8192    # series scored for anomalies, about 1 KB each; more are not scored
//	  flapping: {window: 21, high: 20, low: 5}   # Nagios-style percent state change, hysteresis
//	  thresholds:
//	    - kind: high_cpu
//	      metric: cpuUtilization  # counters are seen as per-second rates
//	      match: {device: "core-.*", ifName: "ge-.*"}   # full-match regular expressions on labels and device
//	      above: 95               # or below:
//	      critical: 99            # optional: severity critical beyond it
//	      clear: 90               # optional: hysteresis
//	      for: 5m
//	      keep_firing_for: 2m
//	      severity: warning       # warning (default), major, critical
//	  anomalies:
//	    - metric: ifHCInOctets
//	      match: {ifName: "uplink.*"}
//	      min_score: 0.5         # the evaluated operating point (make eval-nab)
//	      min_deviation: 3
//	      for: 0s
//	      keep_firing_for: 10m
//	  topology:
//	    roots: [core-sw1]         # LLDP neighbours are oriented away from these
//	    links:
//	      - {parent: core-sw1, port: ge-0/0/1, child: dist-sw1}
type Rules struct {
	Defaults         *bool           `yaml:"defaults"` // nil: true
	Settle           time.Duration   `yaml:"settle"`
	CorrelationWait  int             `yaml:"correlation_wait"`
	MaxAnomalySeries int             `yaml:"max_anomaly_series"`
	Flapping         Flapping        `yaml:"flapping"`
	Thresholds       []ThresholdRule `yaml:"thresholds"`
	Anomalies        []AnomalyRule   `yaml:"anomalies"`
	Topology         Topology        `yaml:"topology"`
}

// Flapping tunes interface_flapping; zero values mean the defaults.
type Flapping struct {
	Window int     `yaml:"window"` // checks, 2-64; default 21
	High   float64 `yaml:"high"`   // percent state change that opens; default 20
	Low    float64 `yaml:"low"`    // percent below which it resolves; default 5
}

// ThresholdRule opens an issue of Kind when Metric is above (or below) a
// threshold for For.
type ThresholdRule struct {
	Kind          string            `yaml:"kind"`
	Metric        string            `yaml:"metric"`
	Match         map[string]string `yaml:"match,omitempty"`
	Above         *float64          `yaml:"above,omitempty"`
	Below         *float64          `yaml:"below,omitempty"`
	Critical      *float64          `yaml:"critical,omitempty"`
	Clear         *float64          `yaml:"clear,omitempty"`
	For           time.Duration     `yaml:"for"`
	KeepFiringFor time.Duration     `yaml:"keep_firing_for"`
	Severity      string            `yaml:"severity,omitempty"`
}

// AnomalyRule opens metric_anomaly when a matching series' anomaly score
// reaches MinScore and it stays out of its expected band for For.
type AnomalyRule struct {
	Metric        string            `yaml:"metric"`
	Match         map[string]string `yaml:"match,omitempty"`
	MinScore      float64           `yaml:"min_score"`     // (0,1]; default 0.5 (detect.DefaultMinScore)
	MinDeviation  float64           `yaml:"min_deviation"` // robust sigmas; default 3
	For           time.Duration     `yaml:"for"`
	KeepFiringFor time.Duration     `yaml:"keep_firing_for"`
	Severity      string            `yaml:"severity,omitempty"`
}

// Topology says which devices sit behind which: configured links, and the
// roots from which LLDP neighbours are oriented.
type Topology struct {
	Roots []string `yaml:"roots"`
	Links []Link   `yaml:"links"`
}

// Link says Child is reached through Parent's interface Port.
type Link struct {
	Parent string `yaml:"parent"`
	Port   string `yaml:"port"`
	Child  string `yaml:"child"`
}

// severities are the allowed values of a rule's severity.
var severities = []string{"warning", "major", "critical"}

var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// reservedKinds are raised by the engine's own rules; a threshold rule of
// one of them would fight over the same issues.
var reservedKinds = []string{"device_unreachable", "device_rebooted", "interface_down", "interface_flapping", "metric_anomaly"}

// setRuleDefaults fills the rules keys the file left out.
func (c *Config) setRuleDefaults() {
	r := &c.Rules
	if r.Defaults == nil {
		yes := true
		r.Defaults = &yes
	}
	if !c.isSet("rules.settle") {
		r.Settle = DefaultSettle
	}
	if !c.isSet("rules.correlation_wait") {
		r.CorrelationWait = DefaultCorrelationWait
	}
	if !c.isSet("rules.max_anomaly_series") {
		r.MaxAnomalySeries = DefaultMaxAnomalySeries
	}
	if !c.isSet("rules.flapping.window") {
		r.Flapping.Window = DefaultFlapWindow
	}
	if !c.isSet("rules.flapping.high") {
		r.Flapping.High = DefaultFlapHigh
	}
	if !c.isSet("rules.flapping.low") {
		r.Flapping.Low = DefaultFlapLow
	}
}

// validateRules reports the problems of the rules section through bad. In
// a Config built in code, zero values mean the defaults.
func (c *Config) validateRules(bad func(path, format string, args ...any)) {
	r := c.Rules
	if r.Settle < 0 {
		bad("rules.settle", "must not be negative, got %s", r.Settle)
	}
	if r.CorrelationWait < 0 {
		bad("rules.correlation_wait", "must not be negative, got %d", r.CorrelationWait)
	}
	if r.MaxAnomalySeries < 0 || (r.MaxAnomalySeries == 0 && c.isSet("rules.max_anomaly_series")) {
		bad("rules.max_anomaly_series", "must be at least 1, got %d", r.MaxAnomalySeries)
	}
	f := r.Flapping
	if f.Window != 0 && (f.Window < 2 || f.Window > 64) {
		bad("rules.flapping.window", "must be between 2 and 64 checks, got %d", f.Window)
	}
	if f.Low < 0 || f.High > 100 || f.Low > f.High {
		bad("rules.flapping", "want 0 <= low <= high <= 100 (percent), got low %v, high %v", f.Low, f.High)
	}
	common := func(p string, match map[string]string, forDur, keep time.Duration, severity string) {
		for _, k := range sortedKeys(match) {
			if _, err := regexp.Compile(match[k]); err != nil {
				bad(p+".match."+k, "bad regular expression %q: %v", match[k], err)
			}
		}
		if forDur < 0 {
			bad(p+".for", "must not be negative, got %s", forDur)
		}
		if keep < 0 {
			bad(p+".keep_firing_for", "must not be negative, got %s", keep)
		}
		if severity != "" && !slices.Contains(severities, severity) {
			bad(p+".severity", "bad severity %q (allowed: warning, major, critical)", severity)
		}
	}
	for i, t := range r.Thresholds {
		p := fmt.Sprintf("rules.thresholds[%d]", i)
		switch {
		case t.Kind == "":
			bad(p+".kind", "required (the issue kind, e.g. high_cpu)")
		case !kindPattern.MatchString(t.Kind):
			bad(p+".kind", "bad kind %q: want snake_case such as high_cpu", t.Kind)
		case slices.Contains(reservedKinds, t.Kind):
			bad(p+".kind", "kind %q is raised by a built-in rule; pick another name", t.Kind)
		}
		if t.Metric == "" {
			bad(p+".metric", "required (the metric name, e.g. cpuUtilization)")
		}
		if (t.Above == nil) == (t.Below == nil) {
			bad(p, "want exactly one of above and below")
		} else if t.Critical != nil {
			if t.Above != nil && *t.Critical < *t.Above {
				bad(p+".critical", "must not be below above (%v), got %v", *t.Above, *t.Critical)
			}
			if t.Below != nil && *t.Critical > *t.Below {
				bad(p+".critical", "must not be above below (%v), got %v", *t.Below, *t.Critical)
			}
		}
		common(p, t.Match, t.For, t.KeepFiringFor, t.Severity)
	}
	for i, a := range r.Anomalies {
		p := fmt.Sprintf("rules.anomalies[%d]", i)
		if a.Metric == "" {
			bad(p+".metric", "required (the metric name, e.g. ifHCInOctets)")
		}
		if c.isSet(p+".min_score") && (a.MinScore <= 0 || a.MinScore > 1) {
			bad(p+".min_score", "must be in (0, 1], got %v", a.MinScore)
		}
		if a.MinDeviation < 0 {
			bad(p+".min_deviation", "must not be negative, got %v", a.MinDeviation)
		}
		common(p, a.Match, a.For, a.KeepFiringFor, a.Severity)
	}
	for i, l := range r.Topology.Links {
		p := fmt.Sprintf("rules.topology.links[%d]", i)
		if l.Parent == "" || l.Port == "" || l.Child == "" {
			bad(p, "parent, port and child are required")
		} else if l.Parent == l.Child {
			bad(p, "device %q cannot be its own parent", l.Child)
		}
	}
}
