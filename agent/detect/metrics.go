package detect

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/netaiops/netaiops/agent/detect/anomaly"
	"github.com/netaiops/netaiops/collector"
)

// anomalyIdle is how long a scored series must have gone without a sample
// before the default scorer may give its slot to a new series; it keeps it
// while there is room.
const anomalyIdle = time.Hour

// NewScorer returns the scorer the engine makes when Options.Scorer is nil:
// an anomaly.Set of maxSeries series (0 or less: DefaultMaxAnomalySeries).
// netaiops-eval scores benchmarks with it, so that what is measured is what
// the agent runs.
func NewScorer(maxSeries int) *anomaly.Set {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxAnomalySeries
	}
	return anomaly.NewSet(maxSeries, anomalyIdle)
}

// cond is the state of one rule condition of one fingerprint, as in
// Prometheus: pending from activeSince while it holds, firing once it held
// For, and still firing until it has been false for KeepFiringFor.
type cond struct {
	activeSince time.Time // zero: not active
	lastTrue    time.Time
	lastEval    time.Time
	firing      bool
	peak        float64        // highest anomaly score while active
	onset       anomaly.Result // the scorer's view when the anomaly began: the baseline
}

// step advances c with the condition's truth at at and reports whether it
// started or stopped firing.
func (c *cond) step(truth bool, at time.Time, forDur, keep time.Duration) (started, stopped bool) {
	c.lastEval = at
	if truth {
		if c.activeSince.IsZero() {
			c.activeSince = at
		}
		c.lastTrue = at
		if !c.firing && at.Sub(c.activeSince) >= forDur {
			c.firing = true
			return true, false
		}
		return false, false
	}
	if c.firing {
		if at.Sub(c.lastTrue) >= keep {
			c.firing = false
			c.activeSince = time.Time{}
			return false, true
		}
		return false, false
	}
	c.activeSince = time.Time{}
	c.peak = 0
	return false, false
}

// value is one value a rule can see: a gauge or a rate as sampled.
type value struct {
	metric string
	labels collector.Labels
	v      float64
}

// ifKnown is an interface as the last poll reported it, for traps.
type ifKnown struct {
	index, name, descr string
	admin              float64
	haveAdmin          bool
}

// derive turns samples into the values rules see: gauges and rates (Kind
// Rate) as sampled. Rates, interface utilisation included, are computed in
// one place, the collector (collector/snmp: <counter>_rate,
// if_in_utilization, if_out_utilization), which leaves out an interval
// with a wrap it cannot tell from a reset, a reboot or a counter
// discontinuity; a raw counter's value means nothing to a rule.
func (e *Engine) derive(samples []collector.Sample) []value {
	out := make([]value, 0, len(samples))
	for _, s := range samples {
		if s.Kind == collector.Gauge || s.Kind == collector.Rate {
			out = append(out, value{s.Metric, s.Labels, s.Value})
		}
	}
	return out
}

// objectOf names the object of a series: its interface (ifName, else
// ifIndex.N), else its labels, else "" (the device). iface is the
// interface name when the series is an interface's.
func objectOf(ls collector.Labels) (object, iface string) {
	if n := ls.Get("ifName"); n != "" {
		return n, n
	}
	if i := ls.Get("ifIndex"); i != "" {
		return "ifIndex." + i, "ifIndex." + i
	}
	if len(ls) == 0 {
		return "", ""
	}
	return ls.String(), ""
}

// violation is the worst series of one threshold fingerprint in one poll.
type violation struct {
	rule      *thresholdRule
	val       value
	iface     string
	object    string
	violating bool
	severity  Severity
	excess    float64
}

// metrics runs threshold and anomaly rules on the values of one poll, then
// resolves what went stale.
func (e *Engine) metrics(c *changes, d *deviceState, device string, at time.Time, samples []collector.Sample) {
	vals := e.derive(samples)
	e.thresholdRules(c, d, device, at, vals)
	e.anomalyRules(c, d, device, at, vals)
	var stale []string
	for fp, cs := range d.conds {
		if at.Sub(cs.lastEval) > e.opts.StaleAfter {
			stale = append(stale, fp)
		}
	}
	sort.Strings(stale)
	for _, fp := range stale {
		delete(d.conds, fp)
		if is := d.open[fp]; is != nil {
			c.resolve(d, is, at, "no data")
		}
	}
}

func (r *thresholdRule) judge(v float64, firing bool) (violating bool, sev Severity, excess float64) {
	thr := r.Threshold
	if firing && r.Clear != nil {
		thr = *r.Clear
	}
	beyond := func(x, t float64) bool {
		if r.Below {
			return x < t
		}
		return x > t
	}
	if !beyond(v, thr) {
		return false, 0, 0
	}
	sev = r.Severity
	if r.Critical != nil && beyond(v, *r.Critical) {
		sev = SeverityCritical
	}
	excess = v - r.Threshold
	if r.Below {
		excess = -excess
	}
	if r.Threshold != 0 {
		excess /= math.Abs(r.Threshold)
	}
	return true, sev, excess
}

func (e *Engine) thresholdRules(c *changes, d *deviceState, device string, at time.Time, vals []value) {
	if len(e.thresholds) == 0 {
		return
	}
	worst := map[string]*violation{}
	for _, v := range vals {
		var kinds []string // kinds a rule already took for this series
		for i := range e.thresholds {
			r := &e.thresholds[i]
			if !matchesMetric(r.Metric, r.rate, v.metric) || contains(kinds, r.Kind) || !r.match.matches(device, v.labels) {
				continue
			}
			kinds = append(kinds, r.Kind)
			object, iface := objectOf(v.labels)
			fp := Fingerprint(r.Kind, device, object)
			firing := d.conds[fp] != nil && d.conds[fp].firing
			bad, sev, excess := r.judge(v.v, firing)
			w := worst[fp]
			if w == nil || (bad && (!w.violating || sev > w.severity || (sev == w.severity && excess > w.excess))) {
				worst[fp] = &violation{rule: r, val: v, iface: iface, object: object, violating: bad, severity: sev, excess: excess}
			}
		}
	}
	fps := make([]string, 0, len(worst))
	for fp := range worst {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		w := worst[fp]
		r := w.rule
		cs := d.conds[fp]
		if cs == nil {
			if !w.violating {
				continue // the common case: nothing to remember
			}
			cs = &cond{}
			d.conds[fp] = cs
		}
		started, stopped := cs.step(w.violating, at, r.For, r.KeepFiringFor)
		is := d.open[fp]
		switch {
		case started:
			e.openIface(c, d, r.Kind, device, w.object, w.iface, w.severity, cs.activeSince, at,
				thresholdSummary(r, w, device, at.Sub(cs.activeSince)), thresholdAttrs(r, w, cs, at))
		case stopped && is != nil:
			is.Attributes = carried(is, thresholdAttrs(r, w, cs, at))
			c.resolve(d, is, at, "cleared")
		case cs.firing && is != nil:
			is.LastSeen = at
			is.Attributes = carried(is, thresholdAttrs(r, w, cs, at))
			if w.violating && w.severity != is.Severity {
				is.Severity = w.severity
				is.Summary = thresholdSummary(r, w, device, at.Sub(cs.activeSince))
				c.update(d, is, at)
			}
		}
		if !cs.firing && cs.activeSince.IsZero() && is == nil {
			delete(d.conds, fp)
		}
	}
}

// carried is fresh with what carry keeps from is's attributes.
func carried(is *Issue, fresh map[string]string) map[string]string {
	carry(is.Attributes, fresh)
	return fresh
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func thresholdAttrs(r *thresholdRule, w *violation, cs *cond, at time.Time) map[string]string {
	op := "above"
	if r.Below {
		op = "below"
	}
	a := map[string]string{
		"metric":          w.val.metric,
		"labels":          w.val.labels.String(),
		"value":           formatValue(w.val.v),
		"threshold":       formatFloat(r.Threshold),
		"op":              op,
		"for":             r.For.String(),
		"keep_firing_for": r.KeepFiringFor.String(),
	}
	if r.Critical != nil {
		a["critical"] = formatFloat(*r.Critical)
	}
	if r.Clear != nil {
		a["clear"] = formatFloat(*r.Clear)
	}
	if !cs.activeSince.IsZero() {
		a["since"] = formatTime(cs.activeSince)
	}
	if !cs.lastTrue.IsZero() && cs.lastTrue.Before(at) {
		a["last_violation"] = formatTime(cs.lastTrue)
	}
	if r.Unit != "" {
		a["unit"] = r.Unit
	}
	return a
}

// thresholdSummary: "ge-0/0/1 on core-sw1: if_in_utilization 93.2% above 90% for 5m0s".
func thresholdSummary(r *thresholdRule, w *violation, device string, held time.Duration) string {
	op := "above"
	if r.Below {
		op = "below"
	}
	where := device
	if w.object != "" {
		where = w.object + " on " + device
	}
	return fmt.Sprintf("%s: %s %s%s %s %s%s for %s", where, w.val.metric, formatValue(w.val.v), r.Unit, op,
		formatFloat(r.Threshold), r.Unit, held.Round(time.Second))
}

// anomalyRules scores every value an anomaly rule matches and runs
// metric_anomaly. Nothing is scored while the device is settling after a
// reboot or an outage: the model would learn the disturbance.
func (e *Engine) anomalyRules(c *changes, d *deviceState, device string, at time.Time, vals []value) {
	if len(e.anomalies) == 0 || at.Before(d.quietUntil) {
		return
	}
	for _, v := range vals {
		var r *anomalyRule
		for i := range e.anomalies {
			if a := &e.anomalies[i]; matchesMetric(a.Metric, a.rate, v.metric) && a.match.matches(device, v.labels) {
				r = &e.anomalies[i]
				break
			}
		}
		if r == nil {
			continue
		}
		if e.scorer == nil {
			e.scorer = NewScorer(e.opts.MaxAnomalySeries)
		}
		res, err := e.scorer.Update(seriesKey(device, v.metric, v.labels), at, v.v)
		if err != nil {
			e.stats.AnomalyDropped++
			continue
		}
		object, iface := objectOf(v.labels)
		if object == "" {
			object = v.metric
		} else {
			object += ":" + v.metric
		}
		fp := Fingerprint(KindMetricAnomaly, device, object)
		cs := d.conds[fp]
		active := cs != nil && (cs.firing || !cs.activeSince.IsZero())
		truth := !res.Learning && (res.Score >= r.MinScore || (active && math.Abs(res.Deviation) >= r.MinDeviation))
		if cs == nil {
			if !truth {
				continue // the common case: nothing to remember
			}
			cs = &cond{}
			d.conds[fp] = cs
		}
		if truth {
			if cs.activeSince.IsZero() && !cs.firing {
				cs.onset = res // expected values from before the model adapts
			}
			cs.peak = max(cs.peak, res.Score)
		}
		started, stopped := cs.step(truth, at, r.For, r.KeepFiringFor)
		is := d.open[fp]
		switch {
		case started:
			e.openIface(c, d, KindMetricAnomaly, device, object, iface, r.Severity, cs.activeSince, at,
				anomalySummary(v, cs.onset, device), anomalyAttrs(r, v, res, cs))
		case stopped && is != nil:
			is.Attributes = carried(is, anomalyAttrs(r, v, res, cs))
			c.resolve(d, is, at, "back to expected")
		case cs.firing && is != nil:
			is.LastSeen = at
			is.Attributes = carried(is, anomalyAttrs(r, v, res, cs))
		}
		if !cs.firing && cs.activeSince.IsZero() && is == nil {
			delete(d.conds, fp)
		}
	}
}

// seriesKey hashes a series' identity (FNV-1a, 64 bits) without
// allocating; a collision between two series of one engine is not a
// practical concern at 64 bits.
func seriesKey(device, metric string, ls collector.Labels) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h ^= 0
		h *= prime
	}
	add(device)
	add(metric)
	for _, l := range ls {
		add(l.Name)
		add(l.Value)
	}
	return h
}

func anomalyAttrs(r *anomalyRule, v value, res anomaly.Result, cs *cond) map[string]string {
	a := map[string]string{
		"metric":          v.metric,
		"labels":          v.labels.String(),
		"observed":        formatValue(v.v),
		"expected":        formatValue(cs.onset.Expected), // the baseline before the anomaly
		"lower":           formatValue(cs.onset.Lower),
		"upper":           formatValue(cs.onset.Upper),
		"expected_now":    formatValue(res.Expected), // what the model, adapting, expects now
		"score":           strconv.FormatFloat(res.Score, 'f', 3, 64),
		"peak_score":      strconv.FormatFloat(cs.peak, 'f', 3, 64),
		"deviation":       strconv.FormatFloat(res.Deviation, 'f', 1, 64),
		"min_score":       formatFloat(r.MinScore),
		"for":             r.For.String(),
		"keep_firing_for": r.KeepFiringFor.String(),
	}
	if !cs.activeSince.IsZero() {
		a["since"] = formatTime(cs.activeSince)
	}
	return a
}

// anomalySummary: "ifHCInOctets_rate of ge-0/0/1 on core-sw1 at 9.5e+07, expected 1.2e+07 (2e+06 to 2.2e+07)",
// with the expectation from the anomaly's onset.
func anomalySummary(v value, res anomaly.Result, device string) string {
	what := v.metric
	if o, _ := objectOf(v.labels); o != "" {
		what += " of " + o
	}
	return fmt.Sprintf("%s on %s at %s, expected %s (%s to %s)", what, device, formatValue(v.v),
		formatValue(res.Expected), formatValue(res.Lower), formatValue(res.Upper))
}

// formatValue renders a measured value with about four significant digits.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6 || (a > 0 && a < 1e-3):
		return strconv.FormatFloat(v, 'g', 4, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
