package detect

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
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

// Metrics the engine derives from the samples of one poll, so that rules can
// name them like any collected metric. Counter samples (ifHCInOctets,
// ifInErrors, ...) are seen by rules as per-second rates under their own
// name; a counter that goes backwards (wrap, reset, reboot) yields no rate
// for that poll.
const (
	// MetricInUtilization is the inbound rate of an interface in percent
	// of its speed: rate(ifHCInOctets, else ifInOctets) * 8 / speed, where
	// speed is ifHighSpeed (Mb/s) or else ifSpeed (b/s) of the same poll.
	MetricInUtilization = "ifInUtilization"
	// MetricOutUtilization is the same for ifHCOutOctets / ifOutOctets.
	MetricOutUtilization = "ifOutUtilization"
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
	DefaultMinScore         = 0.9
	DefaultMinDeviation     = 3
	DefaultFlapWindow       = 21
	DefaultFlapHigh         = 20
	DefaultFlapLow          = 5
	DefaultSettle           = time.Minute
	DefaultCorrelationWait  = 2
	DefaultStaleAfter       = 15 * time.Minute
	DefaultMaxRateGap       = 15 * time.Minute
	DefaultMaxAnomalySeries = 8192
)

func ptr(f float64) *float64 { return &f }

// DefaultThresholds are the threshold rules shipped with the agent, used
// when Options.Thresholds is nil. Metric names are those the SNMP collector
// produces or the engine derives; an operator whose devices name a metric
// differently adds a rule with the same kind and their metric name.
//
//	high_utilization  ifInUtilization, ifOutUtilization > 90 % for 5m (critical 98 %, clears < 80 %), keep 2m
//	interface_errors  ifInErrors, ifOutErrors > 1/s for 2m (critical 100/s), keep 5m
//	interface_errors  ifInDiscards, ifOutDiscards > 10/s for 5m, keep 5m
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
		errs("ifInErrors", 1, ptr(100), 2*time.Minute), errs("ifOutErrors", 1, ptr(100), 2*time.Minute),
		errs("ifInDiscards", 10, nil, 5*time.Minute), errs("ifOutDiscards", 10, nil, 5*time.Minute),
		cpu("cpuUtilization"), cpu("hrProcessorLoad"),
		{Kind: KindHighMemory, Metric: "memoryUtilization", Threshold: 90, Critical: ptr(97), Clear: ptr(85),
			For: 10 * time.Minute, KeepFiringFor: 5 * time.Minute, Unit: "%"},
		{Kind: KindHighTemperature, Metric: "temperatureCelsius", Threshold: 70, Critical: ptr(85), Clear: ptr(65),
			For: 2 * time.Minute, KeepFiringFor: 5 * time.Minute, Unit: "C"},
	}
}

// DefaultAnomalies are the anomaly rules shipped with the agent, used when
// Options.Anomalies is nil: the traffic of every interface, in and out.
func DefaultAnomalies() []AnomalyRule {
	r := func(metric string) AnomalyRule {
		return AnomalyRule{Metric: metric, MinScore: DefaultMinScore, MinDeviation: DefaultMinDeviation,
			For: 2 * time.Minute, KeepFiringFor: 10 * time.Minute}
	}
	return []AnomalyRule{r("ifHCInOctets"), r("ifHCOutOctets")}
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
}

type anomalyRule struct {
	AnomalyRule
	match matcher
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
		th = append(th, thresholdRule{r, m})
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
		an = append(an, anomalyRule{r, m})
	}
	if f := o.Flap; f.Window < 0 || f.Window == 1 || f.Low < 0 || f.High > 100 || (f.High > 0 && f.Low > f.High) {
		errs = append(errs, fmt.Errorf("flapping: want window >= 2 and 0 <= low <= high <= 100, got window %d, low %v, high %v", f.Window, f.Low, f.High))
	}
	return th, an, errors.Join(errs...)
}
