package snmp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// pollOf builds one poll's samples: "metric{ifIndex} value" with counters
// of the given width (32 or 64).
type fakePoll struct {
	samples  []collector.Sample
	counters []counterSample
}

func (f *fakePoll) gauge(metric string, v float64, ifIndex string) *fakePoll {
	var ls collector.Labels
	if ifIndex != "" {
		ls = collector.NewLabels("ifIndex", ifIndex, "ifName", "eth"+ifIndex)
	}
	f.samples = append(f.samples, collector.Sample{Device: "d", Metric: metric, Value: v, Kind: collector.Gauge, Labels: ls})
	return f
}

func (f *fakePoll) counter(metric string, v float64, bits uint8, ifIndex string) *fakePoll {
	// One table per metric in these tests: each metric its own row set.
	t := testTables[metric]
	if t == nil {
		t = &table{name: metric, ncols: 1, ncounters: 1}
		testTables[metric] = t
	}
	f.counters = append(f.counters, counterSample{idx: len(f.samples), bits: bits, row: rowKey{t, ifIndex}, col: &object{}})
	f.gauge(metric, v, ifIndex)
	f.samples[len(f.samples)-1].Kind = collector.Counter
	return f
}

var testTables = map[string]*table{}

// rateLines renders the Rate samples of a poll.
func rateLines(samples []collector.Sample) string {
	var out []string
	for _, s := range samples {
		if s.Kind == collector.Rate || s.Metric == MetricCPUUtilization {
			out = append(out, fmt.Sprintf("%s%s %g", s.Metric, s.Labels, s.Value))
		}
	}
	return strings.Join(out, "\n")
}

func TestRates(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const eth1 = `{ifIndex="1",ifName="eth1"}`
	type step struct {
		after time.Duration // since the previous poll
		poll  *fakePoll
		want  string
	}
	p := func() *fakePoll { return &fakePoll{} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"Counter64 and utilization from ifHighSpeed", []step{
			{0, p().gauge("sysUpTime", 100, "").gauge("ifHighSpeed", 1, "1").counter("ifHCInOctets", 1000, 64, "1"), ""},
			{10 * time.Second, p().gauge("sysUpTime", 110, "").gauge("ifHighSpeed", 1, "1").counter("ifHCInOctets", 11000, 64, "1"),
				"ifHCInOctets_rate" + eth1 + " 1000\nif_in_utilization" + eth1 + " 0.8"},
		}},
		{"Counter32 wraps once", []step{
			{0, p().counter("ifInOctets", 1<<32-100, 32, "1").gauge("ifSpeed", 1e6, "1"), ""},
			{10 * time.Second, p().counter("ifInOctets", 900, 32, "1").gauge("ifSpeed", 1e6, "1"),
				"ifInOctets_rate" + eth1 + " 100\nif_in_utilization" + eth1 + " 0.08"},
		}},
		{"Counter32 reset is no wrap", []step{
			{0, p().counter("ifInErrors", 3e9, 32, "1"), ""},
			{10 * time.Second, p().counter("ifInErrors", 5, 32, "1"), ""},
			{10 * time.Second, p().counter("ifInErrors", 25, 32, "1"), "ifInErrors_rate" + eth1 + " 2"},
		}},
		{"Counter64 backwards", []step{
			{0, p().counter("ifHCOutOctets", 5000, 64, "1"), ""},
			{10 * time.Second, p().counter("ifHCOutOctets", 4000, 64, "1"), ""},
		}},
		{"sysUpTime went back: no rate for the interval, then rates again", []step{
			{0, p().gauge("sysUpTime", 1000, "").counter("ifHCInOctets", 1e12, 64, "1").counter("ifInErrors", 7, 32, "1"), ""},
			{60 * time.Second, p().gauge("sysUpTime", 30, "").counter("ifHCInOctets", 1e12+5e6, 64, "1").counter("ifInErrors", 9, 32, "1"), ""},
			{60 * time.Second, p().gauge("sysUpTime", 90, "").counter("ifHCInOctets", 1e12+5e6+6000, 64, "1").counter("ifInErrors", 15, 32, "1"),
				"ifHCInOctets_rate" + eth1 + " 100\nifInErrors_rate" + eth1 + " 0.1"},
		}},
		{"rebooted during a long gap: sysUpTime advanced less than the time between polls", []step{
			{0, p().gauge("sysUpTime", 1000, "").counter("ifHCInOctets", 100, 64, "1"), ""},
			{10 * time.Minute, p().gauge("sysUpTime", 1200, "").counter("ifHCInOctets", 200, 64, "1"), ""},
		}},
		{"ifCounterDiscontinuityTime changed: that row has no rate", []step{
			{0, p().gauge("ifCounterDiscontinuityTime", 0, "1").counter("ifHCInOctets", 100, 64, "1").
				gauge("ifCounterDiscontinuityTime", 0, "2").counter("ifHCInOctets", 100, 64, "2"), ""},
			{10 * time.Second, p().gauge("ifCounterDiscontinuityTime", 500, "1").counter("ifHCInOctets", 1e9, 64, "1").
				gauge("ifCounterDiscontinuityTime", 0, "2").counter("ifHCInOctets", 200, 64, "2"),
				`ifHCInOctets_rate{ifIndex="2",ifName="eth2"} 10`},
		}},
		{"reboot spike of petabits per second without sysUpTime: beyond the interface speed", []step{
			{0, p().gauge("ifHighSpeed", 10000, "1").counter("ifHCInOctets", 10, 64, "1"), ""},
			{10 * time.Second, p().gauge("ifHighSpeed", 10000, "1").counter("ifHCInOctets", 1.8e19, 64, "1"), ""},
		}},
		{"a row missing from one poll: its rate spans both intervals", []step{
			{0, p().counter("ifHCInOctets", 100, 64, "1").counter("ifHCInOctets", 100, 64, "2"), ""},
			{10 * time.Second, p().counter("ifHCInOctets", 200, 64, "1"), "ifHCInOctets_rate" + eth1 + " 10"},
			{10 * time.Second, p().counter("ifHCInOctets", 300, 64, "1").counter("ifHCInOctets", 5000, 64, "2"),
				"ifHCInOctets_rate" + eth1 + " 10\n" + `ifHCInOctets_rate{ifIndex="2",ifName="eth2"} 245`},
		}},
		{"polls too far apart", []step{
			{0, p().counter("ifHCInOctets", 10, 64, "1"), ""},
			{16 * time.Minute, p().counter("ifHCInOctets", 20, 64, "1"), ""},
		}},
		{"CPU from UCD-SNMP ticks", []step{
			{0, p().counter("ssCpuRawUser", 100, 32, "").counter("ssCpuRawNice", 0, 32, "").counter("ssCpuRawSystem", 100, 32, "").
				counter("ssCpuRawIdle", 800, 32, "").counter("ssCpuRawWait", 0, 32, ""), ""},
			{10 * time.Second, p().counter("ssCpuRawUser", 250, 32, "").counter("ssCpuRawNice", 0, 32, "").counter("ssCpuRawSystem", 200, 32, "").
				counter("ssCpuRawIdle", 1550, 32, "").counter("ssCpuRawWait", 0, 32, ""),
				"ssCpuRawUser_rate{} 15\nssCpuRawNice_rate{} 0\nssCpuRawSystem_rate{} 10\nssCpuRawIdle_rate{} 75\nssCpuRawWait_rate{} 0\ncpuUtilization{} 25"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRates()
			at := t0
			for i, st := range tt.steps {
				at = at.Add(st.after)
				for j := range st.poll.samples {
					st.poll.samples[j].Time = at
				}
				got := rateLines(r.observe(st.poll.samples, st.poll.counters, at))
				if got != st.want {
					t.Errorf("poll %d:\n got: %s\nwant: %s", i+1, got, st.want)
				}
			}
		})
	}
}

// A counter missing from a row that was read has no rate at the next poll:
// its previous value is older than the row's time.
func TestRatesCounterMissingFromRow(t *testing.T) {
	tb := &table{name: "ifXTable", ncounters: 2}
	in, out := &object{cpos: 0}, &object{cpos: 1}
	poll := func(vals map[*object]float64) ([]collector.Sample, []counterSample) {
		var ss []collector.Sample
		var cs []counterSample
		for _, o := range []*object{in, out} {
			if v, ok := vals[o]; ok {
				name := map[*object]string{in: "ifHCInOctets", out: "ifHCOutOctets"}[o]
				cs = append(cs, counterSample{idx: len(ss), bits: 64, row: rowKey{tb, "1"}, col: o})
				ss = append(ss, collector.Sample{Metric: name, Value: v, Kind: collector.Counter, Labels: collector.NewLabels("ifIndex", "1")})
			}
		}
		return ss, cs
	}
	r := newRates()
	t0 := time.Unix(1_700_000_000, 0)
	for i, step := range []struct {
		vals map[*object]float64
		want string
	}{
		{map[*object]float64{in: 100, out: 100}, ""},
		{map[*object]float64{in: 200}, `ifHCInOctets_rate{ifIndex="1"} 10`},
		{map[*object]float64{in: 300, out: 900}, `ifHCInOctets_rate{ifIndex="1"} 10`},
		{map[*object]float64{in: 400, out: 1000}, `ifHCInOctets_rate{ifIndex="1"} 10` + "\n" + `ifHCOutOctets_rate{ifIndex="1"} 10`},
	} {
		ss, cs := poll(step.vals)
		if got := rateLines(r.observe(ss, cs, t0.Add(time.Duration(i)*10*time.Second))); got != step.want {
			t.Errorf("poll %d:\n got: %s\nwant: %s", i+1, got, step.want)
		}
	}
}

// Forget drops a target's state: the next poll starts without rates.
func TestForget(t *testing.T) {
	p := NewPoller(nil)
	o := Options{Target: collector.Target{Name: "a", Address: "127.0.0.1:1"}}
	r := p.targetRates(o)
	if p.targetRates(o) != r {
		t.Fatal("targetRates is not per target")
	}
	p.noBulk.Store(engineKey(o), true)
	p.Forget(o)
	if p.targetRates(o) == r || p.bulkBroken(o) {
		t.Error("Forget kept the target's state")
	}
}

// TestTableStateRows checks the row cursor against rows that come, go and
// change order between polls, and that tables sharing an index slice keep
// their own rows when one of them gains a row.
func TestTableStateRows(t *testing.T) {
	r := newRates()
	a, b := newTableState(2), newTableState(1)
	r.tables[&table{name: "a"}], r.tables[&table{name: "b"}] = a, b
	poll := func(ts *tableState, idxs ...string) []int {
		var rows []int
		for _, idx := range idxs {
			i := ts.row(idx)
			if got := ts.index[i]; got != idx {
				t.Fatalf("row(%q) = %d, which is %q", idx, i, got)
			}
			ts.at[i] = 1
			rows = append(rows, i)
		}
		return rows
	}
	want := func(got []int, want ...int) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
	}
	want(poll(a, "1", "2", "10"), 0, 1, 2)
	want(poll(b, "1", "2", "10"), 0, 1, 2)
	a.endPoll()
	b.endPoll()
	r.shareIndexes()
	if &a.index[0] != &b.index[0] {
		t.Fatal("equal index slices are not shared")
	}
	want(poll(a, "1", "10", "3", "2"), 0, 2, 3, 1) // a row went missing, one came, order changed
	a.endPoll()
	want(poll(a, "1", "2", "10", "3"), 0, 1, 2, 3)
	a.endPoll()
	if len(b.index) != 3 || len(a.index) != 4 || len(a.vals) != 8 || len(a.at) != 4 {
		t.Fatalf("after a gained a row: a %v (%d vals, %d at), b %v", a.index, len(a.vals), len(a.at), b.index)
	}
	want(poll(b, "1", "2", "10"), 0, 1, 2)
	b.endPoll()
	a.at[1] = 0 // row "2" is stale
	if !a.sweep(1) {
		t.Fatal("sweep found nothing stale")
	}
	want(poll(a, "1", "10", "3"), 0, 1, 2)
	a.endPoll()
	if fmt.Sprint(b.index) != "[1 2 10]" {
		t.Fatalf("b's rows changed with a's sweep: %v", b.index)
	}
}
