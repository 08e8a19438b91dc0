package detect

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// Issue kinds raised by threshold, anomaly and flap rules.
const (
	KindHighUtilization   = "high_utilization"
	KindInterfaceErrors   = "interface_errors"
	KindHighCPU           = "high_cpu"
	KindHighMemory        = "high_memory"
	KindHighTemperature   = "high_temperature"
	KindMetricAnomaly     = "metric_anomaly"
	KindInterfaceFlapping = "interface_flapping"
)

// Rules see gauges and rates (Kind Rate) as the collector samples them; raw
// counters (Kind Counter) are not values a threshold means anything for.
// The SNMP collector adds the rate of every counter as <counter>_rate
// (ifInErrors_rate, ifHCInOctets_rate, per second) and the utilisation of
// interfaces, with wraps, resets and reboots handled there, once. A rule
// naming a counter (ifInErrors) sees its rate (ifInErrors_rate), as the
// config documents; ifInUtilization and ifOutUtilization, the names rules
// used when the engine computed utilisation itself, name the collector's.
const (
	// RateSuffix names the rate of a counter: ifInErrors_rate.
	RateSuffix = "_rate"
	// MetricInUtilization is the inbound rate of an interface in percent
	// of its speed, as collector/snmp computes it: rate(ifHCInOctets, else
	// ifInOctets) * 8 / speed, speed ifHighSpeed (Mb/s) or else ifSpeed.
	MetricInUtilization = "if_in_utilization"
	// MetricOutUtilization is the same for ifHCOutOctets / ifOutOctets.
	MetricOutUtilization = "if_out_utilization"
)

// ThresholdRule opens an issue of Kind when Metric crosses Threshold on a
// series whose labels (and device, under the pseudo-label "device") match
// Match, and stays so for For. Series of one device that map to the same
// object (the interface, or the labels) share one issue, which takes the
// worst of them.
type ThresholdRule struct {
	Kind   string
	Metric string
	// Match maps a label name, or "device", to a regular expression the
	// value must match in full. Empty: every series of Metric.
	Match map[string]string
	// Below makes the rule fire when the value is below Threshold instead
	// of above it.
	Below     bool
	Threshold float64
	// Critical, when set, raises the severity to critical beyond it.
	Critical *float64
	// Clear, when set, is the hysteresis: an issue that fires clears only
	// once the value is back past Clear instead of Threshold.
	Clear *float64
	// For is how long the condition must hold before the issue opens.
	For time.Duration
	// KeepFiringFor is how long the issue stays open after the condition
	// cleared; a return within it continues the same issue.
	KeepFiringFor time.Duration
	// Severity below Critical; 0 means warning.
	Severity Severity
	// Unit is appended to values in summaries: "%", "/s", "C".
	Unit string
}

// AnomalyRule opens metric_anomaly when the anomaly score of a series
// matching Metric and Match reaches MinScore, and the series stays outside
// its expected band (|deviation| >= MinDeviation) for For.
type AnomalyRule struct {
	Metric        string
	Match         map[string]string
	MinScore      float64 // 0: DefaultMinScore
	MinDeviation  float64 // robust sigmas; 0: DefaultMinDeviation
	For           time.Duration
	KeepFiringFor time.Duration
	Severity      Severity // 0: warning
}

// FlapOptions tune flap detection, the Nagios way: the share of state
// changes over the last Window checks, recent changes weighing more, opens
// interface_flapping at High percent and resolves it below Low.
type FlapOptions struct {
	Window    int     // checks; 0: 21
	High, Low float64 // percent; 0: 20 and 5
}

// Link says that Child is reached through interface Port of Parent: when
// Port goes down or Parent becomes unreachable, Child's unreachability is
// caused by that.
type Link struct {
	Parent, Port, Child string
}

// Defaults of the options and rules.
const (
	// DefaultMinScore is the operating point netaiops-eval scores (make
	// eval-nab, thresholds.json): 0.5 is where the anomaly scorer calls a
	// deviation as large as the largest the series has shown lately, the
	// level at which it starts its own refractory period; the threshold
	// NAB's optimiser fits on the development half (0.49) agrees.
	DefaultMinScore         = 0.5
	DefaultMinDeviation     = 3
	DefaultFlapWindow       = 21
	DefaultFlapHigh         = 20
	DefaultFlapLow          = 5
	DefaultSettle           = time.Minute
	DefaultCorrelationWait  = 2
	DefaultStaleAfter       = 15 * time.Minute
	DefaultMaxAnomalySeries = 8192
	DefaultMaxTrapDevices   = 1024
	DefaultTrapDeviceQuiet  = time.Hour
)

func ptr(f float64) *float64 { return &f }

// DefaultThresholds are the threshold rules shipped with the agent, used
// when Options.Thresholds is nil. Metric names are those the SNMP collector
// produces; an operator whose devices name a metric differently adds a rule
// with the same kind and their metric name.
//
//	high_utilization  if_in_utilization, if_out_utilization > 90 % for 5m (critical 98 %, clears < 80 %), keep 2m
//	interface_errors  ifInErrors_rate, ifOutErrors_rate > 1/s for 2m (critical 100/s), keep 5m
//	interface_errors  ifInDiscards_rate, ifOutDiscards_rate > 10/s for 5m, keep 5m
//	high_cpu          cpuUtilization, hrProcessorLoad > 90 % for 5m (critical 98 %, clears < 80 %), keep 2m
//	high_memory       memoryUtilization > 90 % for 10m (critical 97 %, clears < 85 %), keep 5m
//	high_temperature  temperatureCelsius > 70 C for 2m (critical 85 C, clears < 65 C), keep 5m
func DefaultThresholds() []ThresholdRule {
	util := func(metric string) ThresholdRule {
		return ThresholdRule{Kind: KindHighUtilization, Metric: metric, Threshold: 90, Critical: ptr(98), Clear: ptr(80),
			For: 5 * time.Minute, KeepFiringFor: 2 * time.Minute, Unit: "%"}
	}
	errs := func(metric string, thr float64, critical *float64, forDur time.Duration) ThresholdRule {
		return ThresholdRule{Kind: KindInterfaceErrors, Metric: metric, Threshold: thr, Critical: critical,
			For: forDur, KeepFiringFor: 5 * time.Minute, Unit: "/s"}
	}
	cpu := func(metric string) ThresholdRule {
		return ThresholdRule{Kind: KindHighCPU, Metric: metric, Threshold: 90, Critical: ptr(98), Clear: ptr(80),
			For: 5 * time.Minute, KeepFiringFor: 2 * time.Minute, Unit: "%"}
	}
	return []ThresholdRule{
		util(MetricInUtilization), util(MetricOutUtilization),
		errs("ifInErrors"+RateSuffix, 1, ptr(100), 2*time.Minute), errs("ifOutErrors"+RateSuffix, 1, ptr(100), 2*time.Minute),
		errs("ifInDiscards"+RateSuffix, 10, nil, 5*time.Minute), errs("ifOutDiscards"+RateSuffix, 10, nil, 5*time.Minute),
		cpu("cpuUtilization"), cpu("hrProcessorLoad"),
		{Kind: KindHighMemory, Metric: "memoryUtilization", Threshold: 90, Critical: ptr(97), Clear: ptr(85),
			For: 10 * time.Minute, KeepFiringFor: 5 * time.Minute, Unit: "%"},
		{Kind: KindHighTemperature, Metric: "temperatureCelsius", Threshold: 70, Critical: ptr(85), Clear: ptr(65),
			For: 2 * time.Minute, KeepFiringFor: 5 * time.Minute, Unit: "C"},
	}
}

// DefaultAnomalies are the anomaly rules shipped with the agent, used when
// Options.Anomalies is nil: the traffic of every interface, in and out
// (bytes per second).
func DefaultAnomalies() []AnomalyRule {
	r := func(metric string) AnomalyRule {
		// No For: the scorer reports an event once (its refractory
		// period damps the repeats), so a score at MinScore opens the
		// issue at that sample, as the evaluation counts it.
		return AnomalyRule{Metric: metric, MinScore: DefaultMinScore, MinDeviation: DefaultMinDeviation,
			KeepFiringFor: 10 * time.Minute}
	}
	return []AnomalyRule{r("ifHCInOctets" + RateSuffix), r("ifHCOutOctets" + RateSuffix)}
}

// matcher is a compiled Match: every label must match its expression.
type matcher []struct {
	label string
	re    *regexp.Regexp
}

func compileMatch(m map[string]string) (matcher, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var out matcher
	for _, k := range names {
		if _, err := regexp.Compile(m[k]); err != nil {
			return nil, fmt.Errorf("match %s: bad regular expression %q: %w", k, m[k], err)
		}
		re, err := regexp.Compile("^(?:" + m[k] + ")$")
		if err != nil {
			return nil, fmt.Errorf("match %s: bad regular expression %q: %w", k, m[k], err)
		}
		out = append(out, struct {
			label string
			re    *regexp.Regexp
		}{k, re})
	}
	return out, nil
}

func (m matcher) matches(device string, ls collector.Labels) bool {
	for _, c := range m {
		v := device
		if c.label != "device" {
			v = ls.Get(c.label)
		}
		if !c.re.MatchString(v) {
			return false
		}
	}
	return true
}

type thresholdRule struct {
	ThresholdRule
	match matcher
	rate  string // Metric's rate sample: Metric + RateSuffix, "" when Metric is one
}

type anomalyRule struct {
	AnomalyRule
	match matcher
	rate  string
}

// ruleMetric returns the metric a rule names, with the old utilisation
// names mapped to the collector's, and the name of its rate sample.
func ruleMetric(m string) (metric, rate string) {
	switch m {
	case "ifInUtilization":
		m = MetricInUtilization
	case "ifOutUtilization":
		m = MetricOutUtilization
	}
	if strings.HasSuffix(m, RateSuffix) || m == MetricInUtilization || m == MetricOutUtilization {
		return m, ""
	}
	return m, m + RateSuffix
}

// matchesMetric reports whether a rule of metric (and rate) sees a value
// of metric m.
func matchesMetric(metric, rate, m string) bool {
	return m == metric || (rate != "" && m == rate)
}

// Validate checks the options' rules and returns every problem found. New
// accepts invalid options (a rule with a bad expression never matches); call
// Validate first to report them.
func (o Options) Validate() error {
	_, _, err := compileRules(o)
	return err
}

func compileRules(o Options) ([]thresholdRule, []anomalyRule, error) {
	var errs []error
	ths := o.Thresholds
	if ths == nil {
		ths = DefaultThresholds()
	}
	var th []thresholdRule
	for i, r := range ths {
		m, err := compileMatch(r.Match)
		if err != nil {
			errs = append(errs, fmt.Errorf("threshold rule %d (%s): %w", i, r.Kind, err))
			continue
		}
		if r.Kind == "" || r.Metric == "" {
			errs = append(errs, fmt.Errorf("threshold rule %d: kind and metric are required", i))
			continue
		}
		switch r.Kind {
		case KindDeviceUnreachable, KindDeviceRebooted, KindInterfaceDown, KindInterfaceFlapping, KindMetricAnomaly:
			errs = append(errs, fmt.Errorf("threshold rule %d: kind %s is raised by a built-in rule", i, r.Kind))
			continue
		}
		if r.For < 0 || r.KeepFiringFor < 0 {
			errs = append(errs, fmt.Errorf("threshold rule %d (%s): negative duration", i, r.Kind))
			continue
		}
		if r.Severity == 0 {
			r.Severity = SeverityWarning
		}
		var rate string
		r.Metric, rate = ruleMetric(r.Metric)
		th = append(th, thresholdRule{r, m, rate})
	}
	ans := o.Anomalies
	if ans == nil {
		ans = DefaultAnomalies()
	}
	var an []anomalyRule
	for i, r := range ans {
		m, err := compileMatch(r.Match)
		if err != nil {
			errs = append(errs, fmt.Errorf("anomaly rule %d (%s): %w", i, r.Metric, err))
			continue
		}
		if r.Metric == "" {
			errs = append(errs, fmt.Errorf("anomaly rule %d: metric is required", i))
			continue
		}
		if r.MinScore < 0 || r.MinScore > 1 {
			errs = append(errs, fmt.Errorf("anomaly rule %d (%s): min_score %v outside [0,1]", i, r.Metric, r.MinScore))
			continue
		}
		if r.MinScore == 0 {
			r.MinScore = DefaultMinScore
		}
		if r.MinDeviation <= 0 {
			r.MinDeviation = DefaultMinDeviation
		}
		if r.Severity == 0 {
			r.Severity = SeverityWarning
		}
		var rate string
		r.Metric, rate = ruleMetric(r.Metric)
		an = append(an, anomalyRule{r, m, rate})
	}
	if f := o.Flap; f.Window < 0 || f.Window == 1 || f.Low < 0 || f.High > 100 || (f.High > 0 && f.Low > f.High) {
		errs = append(errs, fmt.Errorf("flapping: want window >= 2 and 0 <= low <= high <= 100, got window %d, low %v, high %v", f.Window, f.Low, f.High))
	}
	return th, an, errors.Join(errs...)
}
