package snmp

import (
	"math"
	"strings"
	"sync"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// Rate samples (Kind Rate) the poller adds to a poll, besides the raw counters:
//
//	<counter>_rate       per-second rate of every counter column or scalar, same
//	                     labels: ifHCInOctets_rate (bytes/s), ifInErrors_rate, ...
//	if_in_utilization    inbound rate of an interface in percent of its speed:
//	                     ifHCInOctets_rate (else ifInOctets_rate) * 8 / speed,
//	                     speed = ifHighSpeed * 1e6, else ifSpeed (bit/s)
//	if_out_utilization   the same outbound
//	cpuUtilization       (a Gauge) busy share of UCD-SNMP's ssCpuRaw* ticks,
//	                     when the device has no ssCpuIdle
//
// No rate is given for an interval with a discontinuity: the device rebooted
// (sysUpTime went back, or advanced less than the time between polls), the
// row's ifCounterDiscontinuityTime changed, a Counter64 or a counter of
// unknown width went backwards, a Counter32 went backwards by more than a
// plausible wrap, or an octet rate exceeds the interface's speed by more than
// 10 % (the petabit spike of a reboot nothing else caught).
const (
	RateSuffix           = "_rate"
	MetricInUtilization  = "if_in_utilization"
	MetricOutUtilization = "if_out_utilization"
)

// Limits of the rate computer.
const (
	// maxRateGap: polls further apart than this give no rate (the state is stale).
	maxRateGap = 15 * time.Minute
	// staleSeries: a series not seen for this long is forgotten.
	staleSeries = time.Hour
	// uptimeSlack tolerates clock and scheduling jitter when sysUpTime is
	// compared with the time between polls.
	uptimeSlack = 5 * time.Second
	// speedSlack: an octet rate above speed * speedSlack is a discontinuity.
	speedSlack = 1.1
)

// rates is one target's rate computer: the previous value of every counter,
// sysUpTime and the rows' ifCounterDiscontinuityTime.
type rates struct {
	mu       sync.Mutex
	tables   map[*table]*tableState // nil: the scalars
	disc     map[string]float64     // ifIndex -> ifCounterDiscontinuityTime
	uptime   float64
	uptimeAt time.Time
	swept    time.Time // last sweep of stale series
}

// targetRates returns o's target's rate computer.
func (p *Poller) targetRates(o Options) *rates {
	v, _ := p.rates.LoadOrStore(engineKey(o), newRates())
	return v.(*rates)
}

// tableState holds the previous counter values of a table's rows, packed:
// a row number per index, the time each row was read, and ncounters values
// per row (NaN: not read then). About 100 bytes per interface row, so that a
// 10 000-device fleet's state stays small.
type tableState struct {
	ncounters int
	rows      map[string]int32
	at        []int64   // per row, Unix nanoseconds; 0: never
	vals      []float64 // row*ncounters + counter position
}

func newTableState(n int) *tableState {
	return &tableState{ncounters: max(n, 1), rows: map[string]int32{}}
}

// row returns the row number of index, adding the row when new.
func (ts *tableState) row(index string) int {
	if i, ok := ts.rows[index]; ok {
		return int(i)
	}
	i := len(ts.at)
	ts.rows[strings.Clone(index)] = int32(i)
	ts.at = append(ts.at, 0)
	for range ts.ncounters {
		ts.vals = append(ts.vals, math.NaN())
	}
	return i
}

// sweep drops rows not read since before cutoff, repacking the state.
func (ts *tableState) sweep(cutoff int64) {
	stale := 0
	for _, a := range ts.at {
		if a < cutoff {
			stale++
		}
	}
	if stale == 0 {
		return
	}
	fresh := newTableState(ts.ncounters)
	for idx, i := range ts.rows {
		if ts.at[i] >= cutoff {
			j := fresh.row(idx)
			fresh.at[j] = ts.at[i]
			copy(fresh.vals[j*ts.ncounters:], ts.vals[int(i)*ts.ncounters:(int(i)+1)*ts.ncounters])
		}
	}
	*ts = *fresh
}

func newRates() *rates {
	return &rates{tables: map[*table]*tableState{}, disc: map[string]float64{}}
}

// observe adds rate samples for the counters of one poll taken at at.
func (r *rates) observe(samples []collector.Sample, counters []counterSample, at time.Time) []collector.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()

	// A reboot between the polls voids every counter of the device.
	rebooted := false
	for _, s := range samples {
		if s.Metric == "sysUpTime" && s.Labels == nil {
			if !r.uptimeAt.IsZero() {
				elapsed := at.Sub(r.uptimeAt)
				advanced := time.Duration((s.Value - r.uptime) * float64(time.Second))
				rebooted = s.Value < r.uptime || advanced < elapsed-uptimeSlack-elapsed/10
			}
			r.uptime, r.uptimeAt = s.Value, at
		}
	}
	// Rows whose counters were reset (ifCounterDiscontinuityTime changed).
	reset := map[string]bool{}
	for _, s := range samples {
		if s.Metric == "ifCounterDiscontinuityTime" {
			k := s.Labels.Get("ifIndex")
			if prev, ok := r.disc[k]; ok && prev != s.Value {
				reset[k] = true
			}
			r.disc[k] = s.Value
		}
	}

	type ifRow struct {
		labels                 collector.Labels
		in, out, in32, out32   float64
		hasIn, hasOut, has32In bool
		has32Out               bool
		highSpeed, speed       float64
	}
	rows := map[string]*ifRow{}
	row := func(ls collector.Labels) *ifRow {
		k := ls.Get("ifIndex")
		rw := rows[k]
		if rw == nil {
			rw = &ifRow{labels: ls}
			rows[k] = rw
		}
		return rw
	}
	for _, s := range samples {
		switch s.Metric {
		case "ifHighSpeed":
			row(s.Labels).highSpeed = s.Value * 1e6
		case "ifSpeed":
			if s.Value < math.MaxUint32 { // 2^32-1 means "faster: see ifHighSpeed"
				row(s.Labels).speed = s.Value
			}
		}
	}
	speedOf := func(ls collector.Labels) float64 {
		rw := rows[ls.Get("ifIndex")]
		if rw == nil || ls.Get("ifIndex") == "" {
			return 0
		}
		if rw.highSpeed > 0 {
			return rw.highSpeed
		}
		return rw.speed
	}

	cpu := map[string]float64{}
	now := at.UnixNano()
	// A row's counters come together (samples emits row by row). When a row
	// is first met in this poll, its previous values move to prev and its
	// slots are cleared, so that a counter missing from this poll is not
	// later taken as read now.
	var (
		cur     rowKey
		ts      *tableState
		slot    int
		prevAt  int64
		prev    []float64
		started bool
	)
	for _, c := range counters {
		s := samples[c.idx]
		if !started || c.row != cur {
			started, cur = true, c.row
			ts = r.tables[c.row.t]
			if ts == nil {
				n := r.scalarCounters(counters)
				if c.row.t != nil {
					n = c.row.t.ncounters
				}
				ts = newTableState(n)
				r.tables[c.row.t] = ts
			}
			i := ts.row(c.row.index)
			slot, prevAt = i*ts.ncounters, ts.at[i]
			prev = append(prev[:0], ts.vals[slot:slot+ts.ncounters]...)
			for k := range ts.ncounters {
				ts.vals[slot+k] = math.NaN()
			}
			ts.at[i] = now
		}
		if c.col.cpos >= ts.ncounters {
			continue // a plan with more counters than the state was built for
		}
		pv := prev[c.col.cpos]
		gap := time.Duration(now - prevAt)
		ok := prevAt != 0 && !math.IsNaN(pv) && gap > 0 && gap <= maxRateGap && !rebooted &&
			(len(reset) == 0 || !reset[s.Labels.Get("ifIndex")])
		var rate float64
		if ok {
			elapsed := gap.Seconds()
			delta := s.Value - pv
			wrapped := false
			if delta < 0 {
				if c.bits == 32 {
					delta += 1 << 32 // one wrap
					wrapped = true
				} else {
					ok = false // a Counter64 does not wrap in our lifetime: a reset
				}
			}
			rate = delta / elapsed
			sp := 0.0
			if strings.Contains(s.Metric, "Octets") {
				sp = speedOf(s.Labels)
			}
			switch {
			case sp > 0 && rate*8 > sp*speedSlack:
				ok = false // faster than the interface: a reset, not traffic
			case wrapped && sp == 0 && delta > 1<<30:
				// Without a speed to check against, a "wrap" of more than a
				// quarter of the range is likelier a reset (cleared counters).
				ok = false
			}
		}
		ts.vals[slot+c.col.cpos] = s.Value
		if !ok {
			continue
		}
		out := s
		out.Metric, out.Value, out.Kind = s.Metric+RateSuffix, rate, collector.Rate
		samples = append(samples, out)
		switch s.Metric {
		case "ifHCInOctets":
			rw := row(s.Labels)
			rw.in, rw.hasIn = rate, true
		case "ifHCOutOctets":
			rw := row(s.Labels)
			rw.out, rw.hasOut = rate, true
		case "ifInOctets":
			rw := row(s.Labels)
			rw.in32, rw.has32In = rate, true
		case "ifOutOctets":
			rw := row(s.Labels)
			rw.out32, rw.has32Out = rate, true
		case "ssCpuRawUser", "ssCpuRawNice", "ssCpuRawSystem", "ssCpuRawIdle", "ssCpuRawWait":
			cpu[s.Metric] = rate
		}
	}
	var base collector.Sample
	if len(samples) > 0 {
		base = samples[0]
	}
	idxs := make([]string, 0, len(rows))
	for k := range rows {
		idxs = append(idxs, k)
	}
	sortOIDs(idxs)
	util := func(metric string, rate float64, labels collector.Labels, speed float64) {
		s := base
		s.Metric, s.Value, s.Kind, s.Labels = metric, rate*800/speed, collector.Rate, labels
		samples = append(samples, s)
	}
	for _, k := range idxs {
		rw := rows[k]
		speed := rw.highSpeed
		if speed <= 0 {
			speed = rw.speed
		}
		if speed <= 0 || k == "" {
			continue
		}
		switch {
		case rw.hasIn:
			util(MetricInUtilization, rw.in, rw.labels, speed)
		case rw.has32In:
			util(MetricInUtilization, rw.in32, rw.labels, speed)
		}
		switch {
		case rw.hasOut:
			util(MetricOutUtilization, rw.out, rw.labels, speed)
		case rw.has32Out:
			util(MetricOutUtilization, rw.out32, rw.labels, speed)
		}
	}
	if len(cpu) == 5 && !hasMetric(samples, MetricCPUUtilization) {
		total := 0.0
		for _, v := range cpu {
			total += v
		}
		if total > 0 {
			s := base
			s.Metric, s.Value, s.Kind, s.Labels = MetricCPUUtilization, (1-cpu["ssCpuRawIdle"]/total)*100, collector.Gauge, nil
			samples = append(samples, s)
		}
	}
	if r.swept.IsZero() || at.Sub(r.swept) > staleSeries/4 {
		r.swept = at
		for _, ts := range r.tables {
			ts.sweep(now - int64(staleSeries))
		}
	}
	return samples
}

// scalarCounters sizes the scalars' state: the plan's counter scalars.
func (r *rates) scalarCounters(counters []counterSample) int {
	n := 1
	for _, c := range counters {
		if c.row.t == nil {
			n = max(n, c.col.cpos+1)
		}
	}
	return n
}

func hasMetric(samples []collector.Sample, metric string) bool {
	for _, s := range samples {
		if s.Metric == metric {
			return true
		}
	}
	return false
}
