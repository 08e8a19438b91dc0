package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRulesDefaults(t *testing.T) {
	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rules
	if r.Defaults == nil || !*r.Defaults || r.Settle != DefaultSettle || r.CorrelationWait != DefaultCorrelationWait || r.MaxAnomalySeries != DefaultMaxAnomalySeries ||
		r.Flapping != (Flapping{Window: 21, High: 20, Low: 5}) || len(r.Thresholds) != 0 || len(r.Anomalies) != 0 {
		t.Errorf("rules = %+v", r)
	}
}

func TestRulesValid(t *testing.T) {
	c, err := Load("testdata/rules/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	no := false
	want := Rules{
		Defaults: &no, Settle: 2 * time.Minute, CorrelationWait: 0, MaxAnomalySeries: 100000,
		Flapping: Flapping{Window: 11, High: 30, Low: 10.5},
		Thresholds: []ThresholdRule{
			{Kind: "high_utilization", Metric: "ifInUtilization", Match: map[string]string{"device": "core-.*", "ifName": "ge-0/0/.*"},
				Above: f(80), Critical: f(95), Clear: f(70), For: 5 * time.Minute, KeepFiringFor: 2 * time.Minute, Severity: "major"},
			{Kind: "low_optical_power", Metric: "opticalRxPower", Below: f(-20), Critical: f(-25)},
		},
		Anomalies: []AnomalyRule{{Metric: "ifHCInOctets", MinScore: 0.8, MinDeviation: 4, For: time.Minute, KeepFiringFor: 10 * time.Minute}},
		Topology:  Topology{Roots: []string{"core-sw1"}, Links: []Link{{Parent: "core-sw1", Port: "ge-0/0/1", Child: "dist-sw1"}}},
	}
	if !reflect.DeepEqual(c.Rules, want) {
		t.Errorf("rules =\n%+v\nwant\n%+v", c.Rules, want)
	}
	// What --check-config prints loads back the same.
	again, err := Parse([]byte(c.Redacted()), "redacted.yaml")
	if err != nil {
		t.Fatalf("Redacted() does not load: %v", err)
	}
	if !reflect.DeepEqual(again.Rules, c.Rules) {
		t.Errorf("round trip: %+v", again.Rules)
	}
}

// One fixture per rule of the rules section, with its exact message.
func TestRulesInvalid(t *testing.T) {
	tests := map[string]string{
		"invalid-above-and-below.yaml":        `:11: rules.thresholds[0]: want exactly one of above and below`,
		"invalid-anomaly-metric-missing.yaml": `:11: rules.anomalies[0].metric: required (the metric name, e.g. ifHCInOctets)`,
		"invalid-correlation-wait.yaml":       `:10: rules.correlation_wait: must not be negative, got -1`,
		"invalid-critical-side.yaml":          `:14: rules.thresholds[0].critical: must not be below above (90), got 80`,
		"invalid-flapping-thresholds.yaml":    `:10: rules.flapping: want 0 <= low <= high <= 100 (percent), got low 30, high 20`,
		"invalid-flapping-window.yaml":        `:11: rules.flapping.window: must be between 2 and 64 checks, got 100`,
		"invalid-for-negative.yaml":           `:14: rules.thresholds[0].for: must not be negative, got -1m0s`,
		"invalid-keep-firing-negative.yaml":   `:12: rules.anomalies[0].keep_firing_for: must not be negative, got -5m0s`,
		"invalid-kind-format.yaml":            `:11: rules.thresholds[0].kind: bad kind "High-CPU": want snake_case such as high_cpu`,
		"invalid-kind-reserved.yaml":          `:11: rules.thresholds[0].kind: kind "interface_down" is raised by a built-in rule; pick another name`,
		"invalid-kind-missing.yaml":           `:11: rules.thresholds[0].kind: required (the issue kind, e.g. high_cpu)`,
		"invalid-link-incomplete.yaml":        `:12: rules.topology.links[0]: parent, port and child are required`,
		"invalid-link-self.yaml":              `:12: rules.topology.links[0]: device "core-sw1" cannot be its own parent`,
		"invalid-max-anomaly-series.yaml":     `:10: rules.max_anomaly_series: must be at least 1, got 0`,
		"invalid-match-regexp.yaml":           ":13: rules.thresholds[0].match.ifName: bad regular expression \"ge-(\": error parsing regexp: missing closing ): `ge-(`",
		"invalid-metric-missing.yaml":         `:11: rules.thresholds[0].metric: required (the metric name, e.g. cpuUtilization)`,
		"invalid-min-deviation.yaml":          `:12: rules.anomalies[0].min_deviation: must not be negative, got -2`,
		"invalid-min-score.yaml":              `:12: rules.anomalies[0].min_score: must be in (0, 1], got 1.5`,
		"invalid-settle.yaml":                 `:10: rules.settle: must not be negative, got -10s`,
		"invalid-severity.yaml":               `:14: rules.thresholds[0].severity: bad severity "urgent" (allowed: warning, major, critical)`,
		"invalid-threshold-not-number.yaml":   `:13: rules.thresholds[0].above: expected a number, got "high"`,
		"invalid-unknown-key.yaml":            `:14: rules.thresholds[0].for_duration: unknown key (known: kind, metric, match, above, below, critical, clear, for, keep_firing_for, severity)`,
	}
	files, err := filepath.Glob("testdata/rules/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expected message", f)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := "testdata/rules/" + name
			want = path + want
			c, err := Load(path)
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			if err.Error() != want {
				t.Errorf("error:\n got: %s\nwant: %s", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != path || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v is not one *config.Error naming %s", err, path)
			}
		})
	}
}
