package snmp

import (
	"math"
	"slices"
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
	disc     *tableState            // by ifIndex: ifCounterDiscontinuityTime
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
// the index of each row, the time each row was read, and ncounters values
// per row (NaN: not read then). About 40 bytes per row plus 8 per counter,
// so that a 10 000-device fleet's state stays small (9.8 KB per device of
// 48 interfaces, with the self-metrics): no map per table, because a poll
// meets the rows in the order of the previous poll (samples emits them
// sorted) and a cursor finds the next one; tables with the same rows share
// one index slice (shareIndexes).
type tableState struct {
	ncounters int
	index     []string  // per row
	at        []int64   // per row, Unix nanoseconds; 0: never
	vals      []float64 // row*ncounters + counter position
	next      int       // the row expected next in this poll
	// lookup finds rows when the cursor misses (rows came or went); built
	// on the first miss of a poll and dropped by endPoll.
	lookup map[string]int32
	grown  bool // rows were added in this poll
}

func newTableState(n int) *tableState {
	return &tableState{ncounters: max(n, 1)}
}

// row returns the row number of index, adding the row when new.
func (ts *tableState) row(index string) int {
	if i := ts.next; i < len(ts.index) && ts.index[i] == index {
		ts.next++
		return i
	}
	if ts.lookup == nil {
		ts.lookup = make(map[string]int32, len(ts.index))
		for i, idx := range ts.index {
			ts.lookup[idx] = int32(i)
		}
	}
	if i, ok := ts.lookup[index]; ok {
		ts.next = int(i) + 1
		return int(i)
	}
	i := len(ts.index)
	ts.index = append(ts.index, strings.Clone(index))
	ts.lookup[ts.index[i]] = int32(i)
	ts.at = append(ts.at, 0)
	for range ts.ncounters {
		ts.vals = append(ts.vals, math.NaN())
	}
	ts.next, ts.grown = i+1, true
	return i
}

// endPoll rewinds the cursor for the next poll, drops the lookup map and,
// when rows were added, trims the slices' spare capacity (growing by
// append leaves up to half of them unused, in every device's state). It
// reports whether rows were added.
func (ts *tableState) endPoll() bool {
	ts.next, ts.lookup = 0, nil
	if !ts.grown {
		return false
	}
	ts.grown = false
	ts.index, ts.at, ts.vals = slices.Clip(slices.Clone(ts.index)), slices.Clip(slices.Clone(ts.at)), slices.Clip(slices.Clone(ts.vals))
	return true
}

// sweep drops rows not read since before cutoff, repacking the state. It
// reports whether it did.
func (ts *tableState) sweep(cutoff int64) bool {
	stale := 0
	for _, a := range ts.at {
		if a < cutoff {
			stale++
		}
	}
	if stale == 0 {
		return false
	}
	fresh := newTableState(ts.ncounters)
	for i, idx := range ts.index {
		if ts.at[i] >= cutoff {
			j := fresh.row(idx)
			fresh.at[j] = ts.at[i]
			copy(fresh.vals[j*ts.ncounters:], ts.vals[i*ts.ncounters:(i+1)*ts.ncounters])
		}
	}
	fresh.endPoll()
	*ts = *fresh
	return true
}

func newRates() *rates {
	return &rates{tables: map[*table]*tableState{}, disc: newTableState(1)}
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
	var reset map[string]bool
	now := at.UnixNano()
	for _, s := range samples {
		if s.Metric == "ifCounterDiscontinuityTime" {
			k := s.Labels.Get("ifIndex")
			i := r.disc.row(k)
			if prev := r.disc.vals[i]; !math.IsNaN(prev) && prev != s.Value {
				if reset == nil {
					reset = map[string]bool{}
				}
				reset[k] = true
			}
			r.disc.vals[i], r.disc.at[i] = s.Value, now
		}
	}
	grown := r.disc.endPoll()

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
		name := c.col.rate
		if name == "" {
			name = s.Metric + RateSuffix
		}
		out.Metric, out.Value, out.Kind = name, rate, collector.Rate
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
	for _, ts := range r.tables {
		grown = ts.endPoll() || grown
	}
	if r.swept.IsZero() || at.Sub(r.swept) > staleSeries/4 {
		r.swept = at
		for _, ts := range r.tables {
			grown = ts.sweep(now-int64(staleSeries)) || grown
		}
		grown = r.disc.sweep(now-int64(staleSeries)) || grown
	}
	if grown {
		r.shareIndexes()
	}
	return samples
}

// shareIndexes lets tables with the same rows (ifTable, ifXTable and the
// discontinuity times all have one per interface) share one index slice.
// Sharing is safe: an index slice is never written in place, and it has no
// spare capacity (endPoll clips it), so adding a row copies it.
func (r *rates) shareIndexes() {
	states := make([]*tableState, 0, len(r.tables)+1)
	states = append(states, r.disc)
	for _, ts := range r.tables {
		states = append(states, ts)
	}
	for i, a := range states {
		for _, b := range states[:i] {
			if len(a.index) > 0 && len(a.index) == len(b.index) && &a.index[0] != &b.index[0] && slices.Equal(a.index, b.index) {
				a.index = b.index
				break
			}
		}
	}
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
