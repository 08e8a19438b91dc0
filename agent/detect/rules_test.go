package detect

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/agent/detect/anomaly"
	"github.com/netaiops/netaiops/collector"
)

// poll is a successful poll of device number i (10s apart) with samples.
func poll(device string, i int, samples ...collector.Sample) collector.Poll {
	p := collector.Poll{Target: collector.Target{Name: device}, Time: at(i)}
	for _, s := range samples {
		s.Device, s.Time = device, at(i)
		p.Samples = append(p.Samples, s)
	}
	return p
}

func failed(device string, i int) collector.Poll {
	return collector.Poll{Target: collector.Target{Name: device}, Time: at(i), Err: errorString("request timeout")}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func gauge(metric string, v float64, labels ...string) collector.Sample {
	return collector.Sample{Metric: metric, Value: v, Kind: collector.Gauge, Labels: collector.NewLabels(labels...)}
}

func ctr(metric string, v float64, labels ...string) collector.Sample {
	return collector.Sample{Metric: metric, Value: v, Kind: collector.Counter, Labels: collector.NewLabels(labels...)}
}

// rate is a rate sample as collector/snmp adds it next to a counter.
func rate(metric string, v float64, labels ...string) collector.Sample {
	return collector.Sample{Metric: metric, Value: v, Kind: collector.Rate, Labels: collector.NewLabels(labels...)}
}

// ifSamples are the status samples of one interface.
func ifSamples(index int, name string, admin, oper float64) []collector.Sample {
	ls := []string{"ifIndex", strconv.Itoa(index), "ifName", name}
	return []collector.Sample{gauge("ifAdminStatus", admin, ls...), gauge("ifOperStatus", oper, ls...)}
}

func cat(parts ...any) []collector.Sample {
	var out []collector.Sample
	for _, p := range parts {
		switch v := p.(type) {
		case collector.Sample:
			out = append(out, v)
		case []collector.Sample:
			out = append(out, v...)
		}
	}
	return out
}

// noRules are options with no metric rules, for tests of one rule.
func noRules() Options {
	return Options{Thresholds: []ThresholdRule{}, Anomalies: []AnomalyRule{}}
}

func observeAll(e *Engine, polls ...collector.Poll) []string {
	var got []string
	for _, c := range observeChanges(e, polls...) {
		got = append(got, describe(c))
	}
	return got
}

func observeChanges(e *Engine, polls ...collector.Poll) []Change {
	var got []Change
	for _, p := range polls {
		got = append(got, e.Observe(p)...)
	}
	return got
}

func checkChanges(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestThresholdForAndKeepFiringFor(t *testing.T) {
	cpu := ThresholdRule{Kind: KindHighCPU, Metric: "cpuUtilization", Threshold: 90, Critical: ptr(98),
		For: 30 * time.Second, KeepFiringFor: 20 * time.Second, Unit: "%"}
	const fp = "high_cpu/core-sw1/"
	tests := []struct {
		name   string
		rule   ThresholdRule
		values []float64 // one poll each, 10s apart
		want   []string
	}{
		{"below: nothing", cpu, []float64{50, 80, 90, 89}, nil},
		{"must hold for 30s", cpu, []float64{50, 95, 95, 95, 50, 95, 95}, nil},
		{"opens after 30s, stays 20s after it clears", cpu, []float64{50, 95, 95, 95, 95, 50, 50, 50},
			[]string{"opened " + fp + " @4", "resolved " + fp + " @6"}},
		{"a return within keep_firing_for continues the issue", cpu, []float64{95, 95, 95, 95, 50, 95, 50, 50, 50},
			[]string{"opened " + fp + " @3", "resolved " + fp + " @7"}},
		{"critical escalates the same issue", cpu, []float64{95, 95, 95, 95, 99, 99, 50, 50},
			[]string{"opened " + fp + " @3", "updated " + fp + " @4", "resolved " + fp + " @7"}},
		{"clear is the hysteresis", func() ThresholdRule { r := cpu; r.Clear = ptr(80); r.For, r.KeepFiringFor = 0, 0; return r }(),
			[]float64{95, 85, 85, 79, 85}, []string{"opened " + fp + " @0", "resolved " + fp + " @3"}},
		{"below rules", ThresholdRule{Kind: "low_power", Metric: "cpuUtilization", Below: true, Threshold: 10},
			[]float64{50, 5, 20}, []string{"opened low_power/core-sw1/ @1", "resolved low_power/core-sw1/ @2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := noRules()
			o.Thresholds = []ThresholdRule{tt.rule}
			e := New("edge-1", o)
			var polls []collector.Poll
			for i, v := range tt.values {
				polls = append(polls, poll(dev, i, gauge("cpuUtilization", v)))
			}
			checkChanges(t, observeAll(e, polls...), tt.want)
		})
	}
}

func TestThresholdIssueContents(t *testing.T) {
	e := New("edge-1", Options{Anomalies: []AnomalyRule{}}) // shipped thresholds
	var opened []Change
	for i := 0; i <= 31; i++ {
		opened = append(opened, e.Observe(poll(dev, i, gauge("cpuUtilization", 97)))...)
	}
	if len(opened) != 1 {
		t.Fatalf("changes: %v", opened)
	}
	c := opened[0]
	is := c.Issue
	if c.Type != Opened || is.Kind != KindHighCPU || is.Fingerprint != "high_cpu/core-sw1/" || is.Severity != SeverityWarning ||
		!is.FirstSeen.Equal(at(0)) || !c.Time.Equal(at(30)) || is.ID != IssueID("edge-1", is.Fingerprint, at(0)) {
		t.Errorf("issue = %+v at %v", is, c.Time)
	}
	if is.Summary != "core-sw1: cpuUtilization 97.0% above 90% for 5m0s" {
		t.Errorf("summary %q", is.Summary)
	}
	for k, v := range map[string]string{"metric": "cpuUtilization", "value": "97.0", "threshold": "90", "critical": "98",
		"clear": "80", "for": "5m0s", "keep_firing_for": "2m0s", "op": "above", "since": "2026-11-24T12:00:00Z"} {
		if is.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, is.Attributes[k], v, is.Attributes)
		}
	}
}

// Per-label thresholds: the first rule of a kind that matches a series
// applies; series of one interface share one issue, the worst wins.
func TestThresholdMatchAndUtilisation(t *testing.T) {
	o := noRules()
	o.Thresholds = []ThresholdRule{
		{Kind: KindHighUtilization, Metric: MetricInUtilization, Match: map[string]string{"ifName": "uplink.*", "device": "core-.*"}, Threshold: 50, Unit: "%"},
		{Kind: KindHighUtilization, Metric: MetricInUtilization, Threshold: 90, Unit: "%"},
		{Kind: KindHighUtilization, Metric: MetricOutUtilization, Threshold: 90, Critical: ptr(95), Unit: "%"},
	}
	e := New("edge-1", o)
	// 1 Gb/s ports. uplink1 in: 60%; eth2 in: 60% (under its 90%); eth2 out
	// 96%: the utilisation the collector computes from the second poll on.
	sample := func(i int) []collector.Sample {
		n := float64(i)
		var ss []collector.Sample
		for _, f := range []struct {
			idx      string
			name     string
			in, outB float64 // bytes per second
		}{{"1", "uplink1", 75e6, 1e6}, {"2", "eth2", 75e6, 120e6}} {
			ls := []string{"ifIndex", f.idx, "ifName", f.name}
			ss = append(ss, gauge("ifHighSpeed", 1000, ls...), ctr("ifHCInOctets", f.in*10*n, ls...), ctr("ifHCOutOctets", f.outB*10*n, ls...))
			if i > 0 {
				ss = append(ss, rate(MetricInUtilization, f.in*8/1e9*100, ls...), rate(MetricOutUtilization, f.outB*8/1e9*100, ls...))
			}
		}
		return ss
	}
	got := observeAll(e, poll(dev, 0, sample(0)...), poll(dev, 1, sample(1)...))
	checkChanges(t, got, []string{"opened high_utilization/core-sw1/eth2 @1", "opened high_utilization/core-sw1/uplink1 @1"})
	var eth2 Issue
	for _, is := range e.Open() {
		if is.Object == "eth2" {
			eth2 = is
		}
	}
	if eth2.Severity != SeverityCritical || eth2.Attributes["metric"] != MetricOutUtilization || eth2.Attributes["value"] != "96.0" {
		t.Errorf("eth2 = %+v", eth2)
	}
	// Another device does not match the uplink override.
	other := observeAll(e, poll("dist-sw2", 0, sample(0)...), poll("dist-sw2", 1, sample(1)...))
	checkChanges(t, other, []string{"opened high_utilization/dist-sw2/eth2 @1"})
}

// Rules see the rates the collector computed, never raw counters: a rule
// naming a counter sees its rate sample, not its value (4e9 errors since
// boot is no error rate), and the intervals the collector gave no rate for
// (a wrap it could not tell from a reset, a reboot) are simply absent.
func TestRulesSeeRatesNotCounters(t *testing.T) {
	o := noRules()
	o.Thresholds = []ThresholdRule{{Kind: KindInterfaceErrors, Metric: "ifInErrors", Threshold: 1}}
	e := New("edge-1", o)
	ls := []string{"ifIndex", "1", "ifName", "eth0"}
	p := func(i int, uptime, errs float64, rates ...float64) collector.Poll {
		ss := []collector.Sample{gauge("sysUpTime", uptime), ctr("ifInErrors", errs, ls...)}
		for _, r := range rates {
			ss = append(ss, rate("ifInErrors"+RateSuffix, r, ls...))
		}
		return poll(dev, i, ss...)
	}
	got := observeAll(e,
		p(0, 1000, 4e9),        // first poll: no rate yet
		p(1, 1010, 4e9+5, 0.5), // 0.5/s
		p(2, 1020, 3, 0.43),    // a Counter32 wrap, computed across by the collector
		p(3, 1030, 6, 0.3),     //
		p(4, 2, 900),           // reboot: no rate (900 since boot, not in 10s)
		p(5, 12, 903, 0.3),     //
	)
	checkChanges(t, got, []string{"opened device_rebooted/core-sw1/ @4", "resolved device_rebooted/core-sw1/ @5"})
	// A real error rate right after the reboot is suppressed under it;
	// once the device settled it opens.
	got = observeAll(e, p(6, 22, 1000, 9.7), p(7, 32, 1001, 0.1), p(11, 72, 1601, 15))
	checkChanges(t, got, []string{"opened interface_errors/core-sw1/eth0 @11"})
	if is := e.Open()[0]; is.Attributes["metric"] != "ifInErrors_rate" || is.Attributes["value"] != "15.0" {
		t.Errorf("issue %+v: want the rate's evidence", is)
	}
}

// scripted is a Scorer that returns the next result of a script.
type scripted struct {
	results []anomaly.Result
	calls   int
}

func (s *scripted) Update(uint64, time.Time, float64) (anomaly.Result, error) {
	r := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	return r, nil
}

func TestAnomalyRule(t *testing.T) {
	learning := anomaly.Result{Learning: true}
	calm := anomaly.Result{Score: 0.1, Expected: 100, Lower: 70, Upper: 130, Deviation: 0.5}
	spike := anomaly.Result{Score: 0.95, Expected: 100, Lower: 70, Upper: 130, Deviation: 9}
	outside := anomaly.Result{Score: 0.2, Expected: 100, Lower: 70, Upper: 130, Deviation: 5} // refractory: low score, still far out
	const fp = "metric_anomaly/core-sw1/eth0:ifHCInOctets_rate"
	tests := []struct {
		name   string
		script []anomaly.Result
		want   []string
	}{
		{"learning never fires", []anomaly.Result{learning, {Learning: true, Score: 1}, learning}, nil},
		{"a lone spike is not enough for 20s", []anomaly.Result{calm, spike, calm, calm, calm}, nil},
		{"a high score that stays out of band opens, and resolves after keep_firing_for",
			[]anomaly.Result{calm, spike, outside, outside, calm, calm, calm, calm},
			[]string{"opened " + fp + " @4", "resolved " + fp + " @6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := noRules()
			o.Anomalies = []AnomalyRule{{Metric: "ifHCInOctets_rate", For: 20 * time.Second, KeepFiringFor: 20 * time.Second}}
			o.Scorer = &scripted{results: tt.script}
			e := New("edge-1", o)
			var polls []collector.Poll
			ls := []string{"ifIndex", "1", "ifName", "eth0"}
			for i := 0; i <= len(tt.script); i++ {
				ss := []collector.Sample{ctr("ifHCInOctets", float64(i*1000), ls...)}
				if i > 0 { // the first poll gives no rate
					ss = append(ss, rate("ifHCInOctets_rate", 100, ls...))
				}
				polls = append(polls, poll(dev, i, ss...))
			}
			checkChanges(t, observeAll(e, polls...), tt.want)
		})
	}
}

// With the real scorer: a steady series, then a tenfold step.
func TestAnomalyRealScorer(t *testing.T) {
	o := noRules()
	o.Anomalies = []AnomalyRule{{Metric: "ifHCInOctets_rate", For: 30 * time.Second, KeepFiringFor: 5 * time.Minute}}
	e := New("edge-1", o)
	total := 0.0
	var opened []Change
	ls := []string{"ifIndex", "1", "ifName", "eth0"}
	for i := 0; i < 5000; i++ {
		r := 1e6 + float64((i*7919)%13)*1e4 // bytes/s, a little jitter
		if i >= 4800 {
			r = 1e7
		}
		total += r * 10
		ss := []collector.Sample{ctr("ifHCInOctets", total, ls...)}
		if i > 0 {
			ss = append(ss, rate("ifHCInOctets_rate", r, ls...))
		}
		for _, c := range e.Observe(poll(dev, i, ss...)) {
			if i < 4800 {
				t.Fatalf("change before the step at %d: %+v", i, c)
			}
			opened = append(opened, c)
		}
	}
	if len(opened) != 1 || opened[0].Type != Opened {
		t.Fatalf("changes after the step: %v", opened)
	}
	is := opened[0].Issue
	a := is.Attributes
	if is.Kind != KindMetricAnomaly || is.Object != "eth0:ifHCInOctets_rate" || a["metric"] != "ifHCInOctets_rate" ||
		a["labels"] != `{ifIndex="1",ifName="eth0"}` || a["observed"] != "1e+07" || a["expected"] == "" || a["score"] == "" {
		t.Errorf("issue = %+v", is)
	}
	if !strings.HasPrefix(is.Summary, "ifHCInOctets_rate of eth0 on core-sw1 at 1e+07, expected ") {
		t.Errorf("summary %q", is.Summary)
	}
}

func TestFlapRecord(t *testing.T) {
	var f flap
	for i := 0; i < 21; i++ {
		f.record(true, 21)
	}
	if pct, n := f.record(true, 21); pct != 0 || n != 0 {
		t.Errorf("stable: %v%% %d transitions", pct, n)
	}
	pct, n := f.record(false, 21)
	if n != 1 || pct != 6 { // newest transition weighs 1.2 of 20
		t.Errorf("one change: %v%% %d transitions", pct, n)
	}
	var g flap
	for i := 0; i < 21; i++ {
		pct, n = g.record(i%2 == 0, 21)
	}
	if n != 20 || pct < 99.99 || pct > 100.01 {
		t.Errorf("alternating: %v%% %d transitions", pct, n)
	}
}

// An interface bouncing for minutes is one interface_flapping issue; the
// downs while it flaps are suppressed; it resolves once stable.
func TestFlapping(t *testing.T) {
	e := New("edge-1", noRules())
	var got []string
	var polls []collector.Poll
	for i := 0; i < 80; i++ {
		oper := 1.0
		if i >= 10 && i < 40 && i%3 == 0 {
			oper = 2
		}
		polls = append(polls, poll(dev, i, ifSamples(1, "ge-0/0/1", 1, oper)...))
	}
	got = observeAll(e, polls...)
	const down, flapping = "interface_down/core-sw1/ge-0/0/1", "interface_flapping/core-sw1/ge-0/0/1"
	checkChanges(t, got, []string{
		"opened " + down + " @12", "resolved " + down + " @13",
		"opened " + down + " @15", "opened " + flapping + " @16", "resolved " + down + " @16",
		"resolved " + flapping + " @59",
	})
	if s := e.Stats(); s.Suppressed != 8 {
		t.Errorf("suppressed downs = %d, want 8", s.Suppressed)
	}
	// Shutting a flapping interface down ends the flapping.
	e = New("edge-1", noRules())
	polls = polls[:0]
	for i := 0; i < 12; i++ {
		oper, admin := float64(1+i%2), 1.0
		if i >= 10 {
			oper, admin = 2, 2
		}
		polls = append(polls, poll(dev, i, ifSamples(1, "ge-0/0/1", admin, oper)...))
	}
	got = nil
	for _, c := range observeChanges(e, polls...) {
		got = append(got, describe(c)+" "+c.Issue.Attributes["resolution"])
	}
	checkChanges(t, got, []string{"opened " + down + " @1 ", "resolved " + down + " @2 oper up", "opened " + down + " @3 ",
		"opened " + flapping + " @4 ", "resolved " + down + " @4 oper up", "resolved " + flapping + " @10 admin down"})
}

// A device that rebooted: its interfaces coming up and its counters
// restarting are suppressed under the reboot; an interface still down after
// Settle is released as its own issue.
func TestRebootSuppresses(t *testing.T) {
	e := New("edge-1", Options{Settle: 30 * time.Second})
	up := func(i int, uptime float64, oper2 float64) collector.Poll {
		return poll(dev, i, cat(gauge("sysUpTime", uptime), ifSamples(1, "eth0", 1, 1), ifSamples(2, "eth1", 1, oper2))...)
	}
	got := observeAll(e, up(0, 5000, 1), up(1, 5010, 1), up(2, 3, 2), up(3, 13, 2), up(4, 23, 1))
	checkChanges(t, got, []string{"opened device_rebooted/core-sw1/ @2", "resolved device_rebooted/core-sw1/ @3"})
	if s := e.Stats(); s.Suppressed != 1 {
		t.Errorf("suppressed = %d, want 1", s.Suppressed)
	}
	// Again, but eth1 stays down past Settle.
	got = observeAll(e, up(5, 5, 2), up(6, 15, 2))
	sup := e.Suppressed()
	if len(sup) != 1 || sup[0].Fingerprint != "interface_down/core-sw1/eth1" || sup[0].CausedBy != "device_rebooted/core-sw1/" {
		t.Errorf("Suppressed() = %+v", sup)
	}
	got = append(got, observeAll(e, up(7, 25, 2), up(8, 35, 2), up(9, 45, 1))...)
	checkChanges(t, got, []string{"opened device_rebooted/core-sw1/ @5", "resolved device_rebooted/core-sw1/ @6",
		"opened interface_down/core-sw1/eth1 @8", "resolved interface_down/core-sw1/eth1 @9"})
}

// After an outage, interfaces found down at the first polls are part of the
// recovery.
func TestRecoverySuppresses(t *testing.T) {
	e := New("edge-1", noRules())
	got := observeAll(e, poll(dev, 0, ifSamples(1, "eth0", 1, 1)...), failed(dev, 1), failed(dev, 2), failed(dev, 3),
		poll(dev, 4, ifSamples(1, "eth0", 1, 2)...), poll(dev, 5, ifSamples(1, "eth0", 1, 1)...))
	checkChanges(t, got, []string{"opened device_unreachable/core-sw1/ @3", "resolved device_unreachable/core-sw1/ @4"})
}

// The scripted links of TestTopology: core-sw1 ge-0/0/1 -> dist-sw1 -> acc-sw1.
var testLinks = []Link{{"core-sw1", "ge-0/0/1", "dist-sw1"}, {"dist-sw1", "ge-1/0/1", "acc-sw1"}}

func TestTopology(t *testing.T) {
	link := func(i int, oper float64) collector.Poll {
		return poll("core-sw1", i, ifSamples(1, "ge-0/0/1", 1, oper)...)
	}
	const root = "interface_down/core-sw1/ge-0/0/1"
	t.Run("children behind a link that went down are suppressed, whatever the poll order", func(t *testing.T) {
		e := New("edge-1", Options{Topology: testLinks, Thresholds: []ThresholdRule{}, Anomalies: []AnomalyRule{}})
		var got []string
		var last Change
		for i := 0; i < 12; i++ {
			down := i >= 2 && i < 9
			var ps []collector.Poll
			// The grandchild is polled first, the link last.
			if down {
				ps = append(ps, failed("acc-sw1", i), failed("dist-sw1", i), link(i, 2))
			} else {
				ps = append(ps, poll("acc-sw1", i), poll("dist-sw1", i), link(i, 1))
			}
			for _, c := range observeChanges(e, ps...) {
				got = append(got, describe(c))
				last = c
			}
		}
		checkChanges(t, got, []string{"opened " + root + " @2", "resolved " + root + " @9"})
		if s := e.Stats(); s.Suppressed != 2 || s.Released != 0 {
			t.Errorf("stats = %+v", s)
		}
		if n := last.Issue.Attributes["suppressed"]; n != "2" {
			t.Errorf("root's suppressed = %q, want 2", n)
		}
	})
	t.Run("suppressed children carry the root", func(t *testing.T) {
		e := New("edge-1", Options{Topology: testLinks})
		for i := 0; i < 6; i++ {
			observeAll(e, failed("acc-sw1", i), failed("dist-sw1", i), link(i, 2))
		}
		sup := e.Suppressed()
		if len(sup) != 2 || sup[0].Device != "acc-sw1" || sup[0].CausedBy != root || sup[1].Device != "dist-sw1" || sup[1].CausedBy != root {
			t.Errorf("Suppressed() = %+v", sup)
		}
	})
	t.Run("a child announced before its cause is attributed to it", func(t *testing.T) {
		e := New("edge-1", Options{Topology: testLinks[:1], CorrelationWait: -1})
		got := observeAll(e, link(0, 1), failed("dist-sw1", 1), failed("dist-sw1", 2), failed("dist-sw1", 3), link(4, 2))
		checkChanges(t, got, []string{"opened device_unreachable/dist-sw1/ @3", "opened " + root + " @4",
			"updated device_unreachable/dist-sw1/ @4"})
		if open := e.Open(); open[1].Device != "dist-sw1" || open[1].CausedBy != root {
			t.Errorf("Open() = %+v", open)
		}
	})
	t.Run("a child still unreachable once its cause settled is released", func(t *testing.T) {
		e := New("edge-1", Options{Topology: testLinks[:1], Settle: 20 * time.Second})
		var got []string
		for i := 0; i < 10; i++ {
			oper := 2.0
			if i >= 5 {
				oper = 1
			}
			got = append(got, observeAll(e, link(i, oper), failed("dist-sw1", i))...)
		}
		checkChanges(t, got, []string{"opened " + root + " @0", "resolved " + root + " @5", "opened device_unreachable/dist-sw1/ @7"})
	})
	t.Run("an unexplained child waits for its upstream, then opens", func(t *testing.T) {
		e := New("edge-1", Options{Topology: testLinks[:1]})
		// The parent is not polled at all after 0: nothing to decide with.
		got := observeAll(e, link(0, 1), failed("dist-sw1", 1), failed("dist-sw1", 2), failed("dist-sw1", 3),
			failed("dist-sw1", 4), failed("dist-sw1", 5))
		checkChanges(t, got, []string{"opened device_unreachable/dist-sw1/ @5"})
		if open := e.Open(); !open[0].FirstSeen.Equal(at(1)) {
			t.Errorf("first seen %v, want the first failure", open[0].FirstSeen)
		}
	})
}

// LLDP neighbours oriented from the roots give the same correlation.
func TestLLDPTopology(t *testing.T) {
	e := New("edge-1", Options{Roots: []string{"core-sw1"}, Thresholds: []ThresholdRule{}, Anomalies: []AnomalyRule{}})
	lldp := func(local, remote, remotePort string) collector.Sample {
		return collector.Sample{Metric: "lldpRemSysName", Kind: collector.Info, Value: 1,
			Labels: collector.NewLabels("ifName", local, "lldpRemSysName", remote, "lldpRemPortId", remotePort)}
	}
	// As the collector's LLDP-MIB profile labels rows: ports by LLDP id
	// and description, here a MAC address and the ifDescr.
	lldpMIB := func(localID, localDesc, remote, remoteID, remoteDesc string) collector.Sample {
		return collector.Sample{Metric: "lldpRemSysName", Kind: collector.Info, Value: 1,
			Labels: collector.NewLabels("lldpLocPortId", localID, "lldpLocPortDesc", localDesc, "lldpRemSysName", remote,
				"lldpRemPortId", remoteID, "lldpRemPortDesc", remoteDesc)}
	}
	core := func(i int, oper float64) collector.Poll {
		ifs := ifSamples(1, "ge-0/0/1", 1, oper)
		for j := range ifs {
			ifs[j].Labels = collector.NewLabels("ifIndex", "1", "ifName", "ge-0/0/1", "ifDescr", "GigabitEthernet0/0/1")
		}
		return poll("core-sw1", i, cat(ifs, lldpMIB("00:11:22:33:44:55", "GigabitEthernet0/0/1", "dist1.example.net", "xe-0/0/0", ""))...)
	}
	dist := poll("dist-sw1", 0, cat(gauge("sysName", 1, "sysName", "dist1.example.net"), ifSamples(1, "xe-0/0/0", 1, 1),
		lldp("xe-0/0/0", "core-sw1", "ge-0/0/1"), lldp("ge-1/0/1", "acc-sw1", "uplink"))...)
	got := observeAll(e, core(0, 1), dist, poll("acc-sw1", 0))
	for i := 1; i < 6; i++ {
		got = append(got, observeAll(e, core(i, 2), failed("dist-sw1", i), failed("acc-sw1", i))...)
	}
	checkChanges(t, got, []string{"opened interface_down/core-sw1/ge-0/0/1 @1"})
	if p := e.parents("acc-sw1"); len(p) != 1 || p[0] != (Link{"dist-sw1", "ge-1/0/1", "acc-sw1"}) {
		t.Errorf("parents(acc-sw1) = %v", p)
	}
	if len(e.Suppressed()) != 2 {
		t.Errorf("Suppressed() = %+v", e.Suppressed())
	}
}

func TestTraps(t *testing.T) {
	ev := func(i int, typ string, attrs ...string) collector.Event {
		a := map[string]string{}
		for j := 0; j+1 < len(attrs); j += 2 {
			a[attrs[j]] = attrs[j+1]
		}
		return collector.Event{Device: dev, Type: typ, Time: at(i).Add(5 * time.Second), Attrs: a}
	}
	e := New("edge-1", noRules())
	var got []string
	add := func(cs []Change) {
		for _, c := range cs {
			got = append(got, describe(c))
		}
	}
	add(e.Observe(poll(dev, 0, cat(gauge("sysUpTime", 5000), ifSamples(3, "eth3", 1, 1), ifSamples(4, "eth4", 2, 2))...)))
	add(e.ObserveEvent(ev(0, "link_down", "ifIndex", "3")))                                                             // opens at once, named from the last poll
	add(e.ObserveEvent(ev(0, "link_down", "ifIndex", "4")))                                                             // admin down: not an issue
	add(e.ObserveEvent(ev(0, "config_saved")))                                                                          // unknown: ignored
	add(e.ObserveEvent(ev(1, "link_up", "ifName", "eth3")))                                                             // resolves
	add(e.ObserveEvent(ev(2, "cold_start")))                                                                            // reboot, from the trap
	add(e.ObserveEvent(ev(2, "link_down", "ifIndex", "3")))                                                             // part of the reboot: suppressed
	add(e.Observe(poll(dev, 3, cat(gauge("sysUpTime", 5), ifSamples(3, "eth3", 1, 1), ifSamples(4, "eth4", 2, 2))...))) // same reboot
	add(e.Observe(poll(dev, 4, cat(gauge("sysUpTime", 15), ifSamples(3, "eth3", 1, 1), ifSamples(4, "eth4", 2, 2))...)))
	checkChanges(t, got, []string{
		"opened interface_down/core-sw1/eth3 @0", "resolved interface_down/core-sw1/eth3 @1",
		"opened device_rebooted/core-sw1/ @2", "resolved device_rebooted/core-sw1/ @3",
	})
	if s := e.Stats(); s.Suppressed != 1 {
		t.Errorf("suppressed = %d, want 1", s.Suppressed)
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	o := Options{
		Thresholds: []ThresholdRule{{Kind: KindHighCPU, Metric: "cpu", Match: map[string]string{"device": "core-("}}, {Metric: "x"},
			{Kind: KindInterfaceDown, Metric: "ifOperStatus", Threshold: 1}},
		Anomalies: []AnomalyRule{{Metric: "y", MinScore: 2}},
		Flap:      FlapOptions{Window: 21, High: 10, Low: 20},
	}
	want := "threshold rule 0 (high_cpu): match device: bad regular expression \"core-(\": error parsing regexp: missing closing ): `core-(`\n" +
		"threshold rule 1: kind and metric are required\n" +
		"threshold rule 2: kind interface_down is raised by a built-in rule\n" +
		"anomaly rule 0 (y): min_score 2 outside [0,1]\n" +
		"flapping: want window >= 2 and 0 <= low <= high <= 100, got window 21, low 20, high 10"
	if err := o.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant %s", err, want)
	}
	// New leaves the bad rules out and runs the others.
	if e := New("edge-1", o); len(e.thresholds) != 0 || len(e.anomalies) != 0 {
		t.Errorf("bad rules kept: %d %d", len(e.thresholds), len(e.anomalies))
	}
}

// The engine is pure computation: no I/O, no clock, no network.
func TestNoIO(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"os", "os/exec", "io/ioutil", "io/fs", "net", "net/http", "syscall", "log", "log/slog", "google.golang.org/grpc"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if contains(banned, path) || strings.Contains(path, "/gen/") {
				t.Errorf("%s imports %s: agent/detect does no I/O", f, path)
			}
		}
	}
	// time.Now would make the engine depend on the clock.
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []string{"time.Now(", "time.Since(", "time.Until(", "time.Sleep(", "rand."} {
			if strings.Contains(string(src), call) {
				t.Errorf("%s calls %s: the engine runs on sample time only", f, call)
			}
		}
	}
}

// Traps that arrive after a poll told the same story change nothing.
func TestLateTraps(t *testing.T) {
	e := New("edge-1", noRules())
	got := observeAll(e, poll(dev, 0, cat(gauge("sysUpTime", 5000), ifSamples(1, "eth0", 1, 1))...),
		poll(dev, 1, cat(gauge("sysUpTime", 3), ifSamples(1, "eth0", 1, 1))...),
		poll(dev, 2, cat(gauge("sysUpTime", 13), ifSamples(1, "eth0", 1, 1))...))
	for _, ev := range []collector.Event{
		{Device: dev, Type: EventColdStart, Time: at(1).Add(-2 * time.Second)},                                     // the boot the poll at 1 saw
		{Device: dev, Type: EventLinkDown, Time: at(1).Add(time.Second), Attrs: map[string]string{"ifIndex": "1"}}, // before the poll at 2
	} {
		for _, c := range e.ObserveEvent(ev) {
			got = append(got, describe(c))
		}
	}
	checkChanges(t, got, []string{"opened device_rebooted/core-sw1/ @1", "resolved device_rebooted/core-sw1/ @2"})
}

// Samples from outside a poll (flow features) run the metric rules.
func TestObserveSamples(t *testing.T) {
	o := noRules()
	o.Thresholds = []ThresholdRule{{Kind: "flow_fanout", Metric: "flowFanOut", Threshold: 1000, For: 20 * time.Second}}
	e := New("edge-1", o)
	var got []string
	for i, v := range []float64{10, 5000, 5000, 5000, 10} {
		s := gauge("flowFanOut", v, "src", "198.18.0.7")
		s.Device, s.Time = dev, at(i)
		for _, c := range e.ObserveSamples(dev, at(i), []collector.Sample{s}) {
			got = append(got, describe(c)+" "+c.Issue.Object)
		}
	}
	checkChanges(t, got, []string{`opened flow_fanout/core-sw1/{src="198.18.0.7"} @3 {src="198.18.0.7"}`,
		`resolved flow_fanout/core-sw1/{src="198.18.0.7"} @4 {src="198.18.0.7"}`})
}

// A series that stops reporting resolves its issue after StaleAfter and
// leaves no state behind.
func TestStaleSeries(t *testing.T) {
	o := noRules()
	o.Thresholds = []ThresholdRule{{Kind: KindHighCPU, Metric: "cpuUtilization", Threshold: 90, Critical: ptr(98)}}
	o.StaleAfter = time.Minute
	e := New("edge-1", o)
	var got []string
	for _, c := range observeChanges(e, poll(dev, 0, gauge("cpuUtilization", 95)), poll(dev, 1, gauge("cpuUtilization", 99)),
		poll(dev, 2, gauge("cpuUtilization", 95)), poll(dev, 3), poll(dev, 8), poll(dev, 9)) {
		got = append(got, describe(c)+" "+c.Issue.Severity.String()+" "+c.Issue.Attributes["resolution"])
	}
	checkChanges(t, got, []string{"opened high_cpu/core-sw1/ @0 warning ", "updated high_cpu/core-sw1/ @1 critical ",
		"updated high_cpu/core-sw1/ @2 warning ", "resolved high_cpu/core-sw1/ @9 warning no data"})
	if d := e.devices[dev]; len(d.conds) != 0 || len(d.open) != 0 {
		t.Errorf("state left: conds %v, open %v", d.conds, d.open)
	}
}
