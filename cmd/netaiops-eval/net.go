package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/detect/options"
	"github.com/netaiops/netaiops/collector"
)

// The network evaluation: network-shaped series at the agent's cadence,
// with faults injected at known times, run through the agent's engine with
// its shipped defaults; a fault is detected when metric_anomaly opens on
// its series between the fault's start and its end plus netGrace.

// netConfig is the agent's default configuration plus anomaly rules for
// the two series the shipped rules do not score (memory and interface
// errors), on the shipped terms: default min_score, no for, 10m to clear.
const netConfig = agentConfig + `
rules:
  anomalies:
    - {metric: memoryUtilization, keep_firing_for: 10m}
    - {metric: ifInErrors_rate, keep_firing_for: 10m}
`

// netGrace is how long after a fault ends a detection still counts as its.
const netGrace = 30 * time.Minute

// faultKind is one kind of injected fault: the series it shows on and how
// it changes the healthy value v at elapsed time el of a fault that began
// at start.
type faultKind struct {
	name   string
	metric string
	kind   collector.MetricKind
	dur    time.Duration
	fault  func(v, peak float64, since time.Duration) float64
}

var faultKinds = []faultKind{
	{"saturation", "ifHCInOctets_rate", collector.Rate, time.Hour,
		func(v, peak float64, _ time.Duration) float64 { return 1.6 * peak }}, // flat at the link's capacity
	{"drop_to_zero", "ifHCInOctets_rate", collector.Rate, 30 * time.Minute,
		func(v, _ float64, _ time.Duration) float64 { return 0.01 * v }},
	{"level_shift", "ifHCInOctets_rate", collector.Rate, 6 * time.Hour,
		func(v, _ float64, _ time.Duration) float64 { return 1.8 * v }}, // a reroute brings another path's traffic
	{"memory_leak", "memoryUtilization", collector.Gauge, 6 * time.Hour,
		func(v, _ float64, since time.Duration) float64 { return v + 50*since.Hours()/6 }}, // +50 points in 6 hours
	{"error_burst", "ifInErrors_rate", collector.Rate, 3 * time.Minute,
		func(v, _ float64, _ time.Duration) float64 { return v + 50 }},
}

// healthy is the value of a healthy series of kind metric at t: diurnal
// traffic with noise, a flat memory use with noise, a trickle of errors.
func healthy(metric string, t time.Time, base float64, r *rand.Rand) (v, peak float64) {
	switch metric {
	case "memoryUtilization":
		return 40 + 0.5*r.NormFloat64(), 0
	case "ifInErrors_rate":
		if r.Float64() < 0.05 {
			return float64(1 + r.IntN(3)), 0
		}
		return 0, 0
	}
	h := float64(t.Hour()) + float64(t.Minute())/60
	day := 0.55 + 0.45*math.Sin(2*math.Pi*(h-9)/24) // low at night, high in the afternoon
	return math.Max(0, base*day*(1+0.1*r.NormFloat64())), base
}

// netResult is what the evaluation measured for one fault kind.
type netResult struct {
	kind                 string
	faults, detected     int
	detections, inFaults int // metric_anomaly openings on the kind's series, and those in a fault
	ttd                  []time.Duration
}

// runNet simulates series per fault kind (one fault each, at a random time
// on days 2 to 3) plus healthy series of each metric, for days days at
// interval, and counts what the engine opens.
func runNet(series, days int, interval time.Duration, seed uint64) ([]netResult, map[string][]time.Duration, error) {
	c, err := config.Parse([]byte(netConfig), "netaiops-eval")
	if err != nil {
		return nil, nil, fmt.Errorf("network eval configuration: %w", err)
	}
	eng := detect.New("netaiops-eval", options.FromConfig(c))
	type sim struct {
		device  string
		kind    int // index in faultKinds; -1 healthy
		metric  string
		skind   collector.MetricKind
		base    float64
		start   time.Time
		dur     time.Duration
		fault   func(v, peak float64, since time.Duration) float64
		r       *rand.Rand
		offset  time.Duration // poll phase
		labels  collector.Labels
		healthy bool
	}
	begin := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(seed, 1))
	var sims []*sim
	for k, fk := range faultKinds {
		for i := range series {
			s := &sim{device: fmt.Sprintf("%s-%d", fk.name, i), kind: k, metric: fk.metric, skind: fk.kind,
				base: 1e7 * (1 + 9*r.Float64()), dur: fk.dur, fault: fk.fault,
				r: rand.New(rand.NewPCG(seed, uint64(100*k+i+2))), offset: time.Duration(r.IntN(int(interval/time.Second))) * time.Second}
			s.start = begin.Add(24*time.Hour + time.Duration(r.Int64N(int64(2*24*time.Hour-fk.dur)))).Truncate(time.Second)
			sims = append(sims, s)
		}
	}
	for _, m := range []struct {
		metric string
		kind   collector.MetricKind
	}{{"ifHCInOctets_rate", collector.Rate}, {"memoryUtilization", collector.Gauge}, {"ifInErrors_rate", collector.Rate}} {
		for i := range series {
			sims = append(sims, &sim{device: fmt.Sprintf("healthy-%s-%d", m.metric, i), kind: -1, metric: m.metric, skind: m.kind,
				base: 1e7 * (1 + 9*r.Float64()), healthy: true, r: rand.New(rand.NewPCG(seed, uint64(10000+i))),
				offset: time.Duration(r.IntN(int(interval/time.Second))) * time.Second})
		}
	}
	for _, s := range sims {
		if s.metric != "memoryUtilization" {
			s.labels = collector.NewLabels("ifIndex", "1", "ifName", "ge-0/0/1")
		}
	}
	res := make([]netResult, len(faultKinds))
	for k, fk := range faultKinds {
		res[k] = netResult{kind: fk.name, faults: series}
	}
	detected := make([]bool, len(sims))
	healthyAlarms := map[string][]time.Duration{} // metric -> openings, as time since the start
	end := begin.Add(time.Duration(days) * 24 * time.Hour)
	for tick := begin; tick.Before(end); tick = tick.Add(interval) {
		for i, s := range sims {
			at := tick.Add(s.offset)
			v, peak := healthy(s.metric, at, s.base, s.r)
			if !s.healthy && !at.Before(s.start) && at.Before(s.start.Add(s.dur)) {
				v = s.fault(v, peak, at.Sub(s.start))
			}
			p := collector.Poll{Target: collector.Target{Name: s.device}, Time: at,
				Samples: []collector.Sample{{Device: s.device, Time: at, Metric: s.metric, Kind: s.skind, Labels: s.labels, Value: v}}}
			for _, ch := range eng.Observe(p) {
				if ch.Type != detect.Opened || ch.Issue.Kind != detect.KindMetricAnomaly {
					continue
				}
				if s.healthy {
					healthyAlarms[s.metric] = append(healthyAlarms[s.metric], at.Sub(begin))
					continue
				}
				nr := &res[s.kind]
				nr.detections++
				if !at.Before(s.start) && at.Before(s.start.Add(s.dur+netGrace)) {
					nr.inFaults++
					if !detected[i] {
						detected[i] = true
						nr.detected++
						nr.ttd = append(nr.ttd, at.Sub(s.start))
					}
				}
			}
		}
	}
	return res, healthyAlarms, nil
}

func printNet(w io.Writer, res []netResult, healthyAlarms map[string][]time.Duration, series, days int, interval time.Duration) {
	fmt.Fprintf(w, "network series: %d per fault kind and %d healthy per metric, %d days at %v, shipped min_score %v\n",
		series, series, days, interval, detect.DefaultMinScore)
	fmt.Fprintf(w, "%-14s %7s %9s %7s %10s %9s %13s %13s\n", "fault", "faults", "detected", "recall", "openings", "precision", "median-ttd", "max-ttd")
	for _, r := range res {
		prec := math.NaN()
		if r.detections > 0 {
			prec = float64(r.inFaults) / float64(r.detections)
		}
		med, mx := "-", "-"
		if len(r.ttd) > 0 {
			sort.Slice(r.ttd, func(i, j int) bool { return r.ttd[i] < r.ttd[j] })
			med, mx = r.ttd[len(r.ttd)/2].Round(time.Second).String(), r.ttd[len(r.ttd)-1].Round(time.Second).String()
		}
		fmt.Fprintf(w, "%-14s %7d %9d %7.2f %10d %9.2f %13s %13s\n", r.kind, r.faults, r.detected,
			float64(r.detected)/float64(r.faults), r.detections, prec, med, mx)
	}
	for _, m := range []string{"ifHCInOctets_rate", "memoryUtilization", "ifInErrors_rate"} {
		var first []string
		for i, d := range healthyAlarms[m] {
			if i == 5 {
				first = append(first, "...")
				break
			}
			first = append(first, d.Round(time.Minute).String())
		}
		fmt.Fprintf(w, "healthy %-18s %d series: %d metric_anomaly openings in %d days %v\n", m, series, len(healthyAlarms[m]), days, first)
	}
	fmt.Fprintf(w, "a fault is detected when metric_anomaly opens on its series from its start to %v after its end;\n", netGrace)
	fmt.Fprintln(w, "precision: openings on the faulty series inside those windows over all openings on them.")
}
