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

// counterState is a counter's previous value and when it was read (Unix
// nanoseconds): 16 bytes per series, for fleets of millions of counters.
type counterState struct {
	v  float64
	at int64
}

// rates is one target's rate computer: the previous value of every counter,
// sysUpTime and the rows' ifCounterDiscontinuityTime.
type rates struct {
	mu       sync.Mutex
	counters map[rowKey]*rowState // by row; a row's counters by column position
	disc     map[string]float64   // ifIndex -> ifCounterDiscontinuityTime
	uptime   float64
	uptimeAt time.Time
	swept    time.Time // last sweep of stale series
}

// targetRates returns o's target's rate computer.
func (p *Poller) targetRates(o Options) *rates {
	v, _ := p.rates.LoadOrStore(engineKey(o), newRates())
	return v.(*rates)
}

// rowState holds a row's counters, indexed by their position among the
// table's (or the scalars') counters:
// one map entry per row rather than per counter keeps a 10 000-device fleet
// small.
type rowState struct {
	cols []counterState // at 0: never seen
	at   int64          // last poll that saw the row
}

func newRates() *rates {
	return &rates{counters: map[rowKey]*rowState{}, disc: map[string]float64{}}
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
	for _, c := range counters {
		s := samples[c.idx]
		rs := r.counters[c.row]
		if rs == nil {
			n := 1
			if c.row.t != nil {
				n = c.row.t.ncounters
			}
			rs = &rowState{cols: make([]counterState, max(n, c.col.cpos+1))}
			r.counters[c.row] = rs
		} else if c.col.cpos >= len(rs.cols) {
			rs.cols = append(rs.cols, make([]counterState, c.col.cpos+1-len(rs.cols))...)
		}
		rs.at = now
		prev := rs.cols[c.col.cpos]
		seen := prev.at != 0
		gap := time.Duration(now - prev.at)
		ok := seen && gap > 0 && gap <= maxRateGap && !rebooted && (len(reset) == 0 || !reset[s.Labels.Get("ifIndex")])
		var rate float64
		if ok {
			elapsed := gap.Seconds()
			delta := s.Value - prev.v
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
		rs.cols[c.col.cpos] = counterState{v: s.Value, at: now}
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
		for k, c := range r.counters {
			if time.Duration(now-c.at) > staleSeries {
				delete(r.counters, k)
			}
		}
	}
	return samples
}

func hasMetric(samples []collector.Sample, metric string) bool {
	for _, s := range samples {
		if s.Metric == metric {
			return true
		}
	}
	return false
}
