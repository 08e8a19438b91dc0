package anomaly

import (
	"math"
	"time"
	"unsafe"
)

// Tuning shared by every series. These are constants, not options: one set
// of parameters serves every series, each series adapts by learning.
//
// Rates, counts and memories below are per step of stepSeconds (5 minutes),
// not per sample: a sample counts for the time since the previous one, in
// steps, at most one. So a series sampled every 10 s (the agent's cadence)
// takes 30 samples to weigh what one 5-minute sample weighs, and the
// warm-up, the refractory period, the half-lives and the record memories
// last the same time at either cadence. A sample never counts for more than
// one step, however long the gap before it: a model learns from samples,
// and one sample after a gap is no more informative than any other; slower
// series (30-minute, hourly) therefore count in samples, as before.
const (
	// stepSeconds is the step the rates below are given per: NAB's and
	// many monitoring systems' cadence.
	stepSeconds = 300
	// warmup is how many steps a new series is observed before it may
	// score (12.5 hours at 5-minute samples or faster); the scales it
	// learns start as plain means of what it saw.
	warmup = 150
	// trackFrom is when records start to be kept: by then each scale
	// rests on fifty steps.
	trackFrom = warmup / 3

	// buckets splits a day into equal slots of the seasonal profile;
	// offsets are interpolated between slot centres.
	buckets   = 48
	day       = 86400 // seconds
	minSeason = day   // history needed before the seasonal channel speaks

	// weekSlots splits each day of the week into equal slots of the
	// weekly correction; a week is 7*weekSlots slots.
	weekSlots = 12
	week      = 7 * day
	minWeek   = 2 * week // history needed before the weekly channel speaks

	alphaShort      = 0.3          // channels N, S and W: short average of |deviation|
	alphaErr        = 0.01         // channels N, S and W: mean absolute error
	alphaSLevel     = 0.003        // channel S: deseasonalised level
	alphaSeason     = 0.2          // channel S: slot offsets, per sample at the slot
	alphaSlotMAE    = 0.05         // channel S: slot mean absolute errors
	slotMAEFloor    = 0.5          // channel S: a slot's MAE is at least this share of the global one
	seasonGain      = 0.8          // channel S speaks when its MAE is below this share of channel L's; W when below S's
	alphaWeekVisit  = 0.5          // channel W: how far a weekly slot moves towards what it sees in one visit
	alphaMid        = 0.1          // channel M: average of the last ~10 values
	alphaLong       = 0.005        // channels L and M: long-run level and spread
	clipErr         = 4            // errors beyond clipErr*MAE update the MAE as clipErr*MAE
	maxDev          = 12           // deviations (in sigmas) are capped here
	normScale       = 1.2533       // sigma / mean absolute deviation of a normal law
	minRelScale     = 1e-4         // scale floor relative to the level's magnitude
	maxValue        = 1e30         // values are clamped to ±maxValue, so no difference of two overflows float32
	gapFactor       = 8            // an interval this many times the usual one is a gap in the data
	alphaInterval   = 0.1          // per sample: the usual interval follows the last ~10
	absurd          = 100          // sigmas: a jump beyond maxDev moves a learnt level by at most this many of its sigmas
	absScale        = 1e-9         // absolute scale floor
	recordDecay     = 0.9998       // per sample; the record memory halves in ~3500 samples
	recordFloor     = 0.5          // sigmas added to a record so tiny ones do not dominate
	slotRecordDecay = 0.995        // per sample at the slot: ~3%/day at 5-minute samples
	alarmAt         = 0.5          // a score this high starts the refractory period
	refractory      = 200          // steps after an alarm in which repeats are damped
	damping         = 0.5          // factor on scores in the refractory period
	escalateBy      = 0.05         // a score beyond the last alarm's by this much passes undamped
	alarmDecay      = 1 - 1.0/3000 // per sample: the alarm count forgets over ~3000 samples
	freeAlarms      = 2            // recent alarms a series may raise before it is judged more strictly
	alarmWeight     = 0.25         // each recent alarm beyond those divides the odds r⁴ by 1+this
	sigmasInBand    = 3            // Lower and Upper are Expected ± this many sigmas
)

// Channel names the model whose deviation decided a score.
type Channel uint8

const (
	// Step compares a value with the previous one: spikes and jumps.
	Step Channel = iota
	// Season compares a value with the learnt daily profile: a cycle
	// that breaks or shifts.
	Season
	// Level compares a value, or the average of the last ~10, with the
	// long-run level: shifts too slow for Step, values out of range.
	Level
	// Week compares a value with the daily profile corrected for the day
	// of the week, where the series has a weekly cycle: a weekday that
	// behaves like a Sunday.
	Week
)

func (c Channel) String() string {
	switch c {
	case Step:
		return "step"
	case Season:
		return "season"
	case Level:
		return "level"
	case Week:
		return "week"
	}
	return "unknown"
}

// Result is the score of one sample and the evidence behind it.
type Result struct {
	// Score is the anomaly score in [0,1]: low while the series is
	// learning or behaves as it did before, near 1 when a deviation
	// breaks the series' own record by far.
	Score float64
	// Channel is the model whose deviation decided the score.
	Channel Channel
	// Expected is the value that model predicted for this sample.
	Expected float64
	// Lower and Upper bound the band of usual values of that model.
	Lower, Upper float64
	// Deviation is (value - Expected) in units of the model's robust
	// sigma.
	Deviation float64
	// Learning is true while the series has too little history to score.
	Learning bool
}

// Detector scores one series. Its zero value is ready to use; it holds no
// pointers, never allocates and its size is fixed: StateBytes.
type Detector struct {
	interval float32 // seconds: the series' usual interval between samples
	w        float32 // steps of history: each sample adds its weight
	since    float32 // steps since the last alarm
	first    int64   // unix seconds of the first sample
	last     int64   // unix seconds of the latest sample

	prev   float32 // channel N: the value a step ago (the previous value at 5-minute samples or slower)
	maeN   float32 // channel N: mean absolute step
	shortN float32 // channel N: short average of |deviation|

	slevel float32 // channel S: deseasonalised level
	maeS   float32 // channel S: mean absolute error
	shortS float32 // channel S: short average of |deviation|

	long float32 // channels L, M: slow EWMA of the value
	madL float32 // channel L: mean absolute deviation from long
	mid  float32 // channel M: fast EWMA of the value
	madM float32 // channel M: mean absolute deviation of mid from long

	maeW   float32 // channel W: mean absolute error
	shortW float32 // channel W: short average of |deviation|

	recN, recS, recL, recM, recW float32 // decaying records of each channel
	alarm                        float32 // score of the last alarm
	alarms                       float32 // recent alarms, decaying: how often this series alarms
	seasonOn                     bool    // channel S spoke at the previous sample
	weekOn                       bool    // channel W spoke at the previous sample

	// slot holds the daily profile. The fields of one slot sit together
	// so an update touches one cache line of it.
	slot [buckets]slotState
	// week holds the weekly correction of the daily profile: the mean
	// error of channel S in each slot of the week.
	week [7 * weekSlots]float32
}

// slotState is what a Detector learns about one slot of the day.
type slotState struct {
	mean float32 // offset from the deseasonalised level
	mae  float32 // mean absolute error of the seasonal prediction
	recN sigmas  // decaying record of channel N at this time of day
	recL sigmas  // decaying record of channels L and M at this time of day
}

// sigmas holds a deviation of 0 to maxDev sigmas in 16 bits.
type sigmas uint16

const sigmaUnits = 4096 // per sigma: maxDev*sigmaUnits fits in 16 bits

func (s sigmas) get() float32 { return float32(s) / sigmaUnits }

func toSigmas(x float32) sigmas { return sigmas(min(x, maxDev)*sigmaUnits + 0.5) }

// StateBytes is the size of one series' state in bytes.
const StateBytes = int(unsafe.Sizeof(Detector{}))

// Update scores value v observed at t and learns from it. A value that is
// not a finite float32 (NaN, ±Inf, beyond ±3.4e38) is neither scored nor
// learnt. A sample dated at or before the previous one (a clock step back)
// is scored and learnt with the least weight, one second's; a sample after
// a gap with the weight of one step.
func (d *Detector) Update(t time.Time, v float64) Result {
	return d.update(t.Unix(), v)
}

func (d *Detector) update(ts int64, v float64) Result {
	if !(math.Abs(v) <= math.MaxFloat32) { // also false for NaN
		e := float64(d.prev)
		return Result{Expected: e, Lower: e, Upper: e, Learning: d.w < warmup}
	}
	x := float32(max(-maxValue, min(v, maxValue)))
	if d.w == 0 {
		d.w = 1
		d.first, d.last = ts, ts
		d.prev, d.slevel, d.long, d.mid = x, x, x, x
		return Result{Expected: v, Lower: v, Upper: v, Learning: true}
	}
	// k: this sample's weight in steps, (0, 1].
	dt := ts - d.last
	k := float32(1)
	if dt < stepSeconds {
		k = float32(max(dt, 1)) / stepSeconds
	}
	// A gap: more than gapFactor times the series' usual interval since
	// the previous sample. The previous value is then too old to measure
	// a step from (a daily cycle moved on while no sample came).
	fdt := float32(max(dt, 1))
	gap := d.interval > 0 && fdt > gapFactor*d.interval
	if d.interval == 0 {
		d.interval = fdt
	}
	d.interval += alphaInterval * (min(fdt, gapFactor*d.interval) - d.interval)
	d.last = ts
	d.w += k
	b0, b1, w1 := slots(ts)
	s0, s1 := &d.slot[b0], &d.slot[b1]
	w0 := 1 - w1
	seasonal := s0.mean*w0 + s1.mean*w1
	floor := float32(absScale) + minRelScale*abs32(d.long)
	// While young, averages are plain means (weight k/w), so the first
	// samples set the scale instead of a zero start.
	young := k / d.w
	aErr, aLong := max(k*alphaErr, young), max(k*alphaLong, young)
	aShort, aMid := k*alphaShort, k*alphaMid

	// Channel N: the step from the previous value.
	if gap {
		d.prev = x // the step channel starts again from this sample
	}
	eN := x - d.prev
	sigN := normScale*d.maeN + floor
	// A jump (a step beyond clipErr sigmas) moves the levels the models
	// learn by at most clipErr of their sigmas: one absurd value (1e12 on
	// a series of 100) must not poison them for longer than the
	// refractory period. A level shift is a jump once; the samples after
	// it are close to the one before and teach the new level in full.
	jump := d.w > trackFrom && abs32(eN) > maxDev*sigN
	// A step back towards the long-run level is a return, not news: only
	// what overshoots the level counts.
	news := abs32(eN)
	if (eN > 0) != (d.prev > d.long) {
		news = max(0, news-abs32(d.prev-d.long))
	}
	d.shortN += aShort * (min(news/sigN, maxDev) - d.shortN)
	d.maeN += aErr * (d.clip(abs32(eN), d.maeN) - d.maeN)
	predN := d.prev
	// The value a step ago: the previous value at 5-minute samples or
	// slower, an average over the last step at faster ones, so a step is
	// measured over the same time at any cadence.
	d.prev += k * (x - d.prev)

	// Channel S: Holt-Winters-like additive daily profile, with a mean
	// absolute error per slot so that a noisy hour is judged by its own
	// spread.
	predS := d.slevel + seasonal
	eS := x - predS
	maeSlot := max(s0.mae*w0+s1.mae*w1, slotMAEFloor*d.maeS)
	sigS := normScale*maeSlot + floor
	devS := eS / sigS
	d.shortS += aShort * (min(abs32(devS), maxDev) - d.shortS)
	d.maeS += aErr * (d.clip(abs32(eS), d.maeS) - d.maeS)

	// Channel W: channel S's prediction corrected by what its error has
	// been at this slot of the week (a coarse day-of-week profile).
	wk := &d.week[weekSlot(ts)]
	predW := predS + *wk
	eW := x - predW
	sigW := normScale*d.maeW + floor
	d.shortW += aShort * (min(abs32(eW)/sigW, maxDev) - d.shortW)
	d.maeW += aErr * (d.clip(abs32(eW), d.maeW) - d.maeW)
	// Each visit to a weekly slot (two hours, once a week) moves it
	// about alphaWeekVisit of the way, whatever the sampling interval.
	aW := float32(alphaSeason)
	if span := ts - d.first; span > 0 {
		perVisit := float32(day/weekSlots) * d.w / float32(span)
		aW = min(aW, alphaWeekVisit/max(perVisit, 1))
	}
	*wk += k * aW * (limit(eS, absurd*sigS, jump) - *wk)
	// A slot's errors are winsorised at its own spread, not the global
	// one: a slot where the series is always rough (a sharp daily edge)
	// must learn that it is, or it breaks records every day.
	ce := d.clip(abs32(eS), maeSlot)
	d.slevel += k * alphaSLevel * limit(x-seasonal-d.slevel, absurd*sigS, jump)
	rs := limit(x-d.slevel-seasonal, absurd*sigS, jump)
	s0.mean += k * alphaSeason * w0 * rs
	s1.mean += k * alphaSeason * w1 * rs
	s0.mae += k * alphaSlotMAE * w0 * (ce - s0.mae)
	s1.mae += k * alphaSlotMAE * w1 * (ce - s1.mae)

	// Channels L and M: the value, and the average of the last ~10, off
	// the long-run level.
	sigL := normScale*d.madL + floor
	d.mid += aMid * limit(x-d.mid, absurd*sigL, jump)
	eM := d.mid - d.long
	devM := min(abs32(eM)/(normScale*d.madM+floor), maxDev)
	d.madM += aLong * (d.clip(abs32(eM), d.madM) - d.madM)
	predL := d.long
	eL := x - d.long
	devL := min(abs32(eL)/sigL, maxDev)
	d.long += aLong * limit(eL, absurd*sigL, jump)
	d.madL += aLong * (d.clip(abs32(eL), d.madL) - d.madL)

	res := evidence(Step, predN, x, sigN)
	if d.w <= trackFrom {
		res.Learning = true
		d.since += k
		return res
	}

	// Records: how far each channel's deviation exceeds the largest it
	// has shown lately. The largest ratio decides.
	lo, hi := b0-1, b1+1
	if lo < 0 {
		lo += buckets
	}
	if hi >= buckets {
		hi -= buckets
	}
	sl, sh := &d.slot[lo], &d.slot[hi]
	sn := s0 // the slot this sample is nearest to
	if w1 >= 0.5 {
		sn = s1
	}
	decay := 1 - k*(1-recordDecay)
	r := record(&d.recN, d.shortN, decay, k)
	// devL is one sample's deviation, not an average: at a fast cadence
	// its extremes come as often as the samples, so its record is set at
	// once, as at 5 minutes, or every sample's luck would break it.
	rl := max(record(&d.recL, devL, decay, 1), record(&d.recM, devM, decay, k))
	// ... and off what it has shown at this time of day (this slot and
	// its neighbours, for jitter): a nightly job is not news.
	r = min(r, d.shortN/(max(sl.recN, s0.recN, s1.recN, sh.recN).get()+recordFloor))
	rl = min(rl, max(devL, devM)/(max(sl.recL, s0.recL, s1.recL, sh.recL).get()+recordFloor))
	slotDecay := 1 - k*(1-slotRecordDecay)
	sn.recN = toSigmas(raise(sn.recN.get(), d.shortN, slotDecay, k))
	sn.recL = toSigmas(max(raise(sn.recL.get(), devL, slotDecay, 1), raise(sn.recL.get(), devM, slotDecay, k)))
	if rl > r {
		r = rl
		res = evidence(Level, predL, x, sigL)
	}
	// The seasonal channel speaks while its profile beats the flat level.
	// On the sample it starts to, it only observes: its record, frozen
	// while it was silent, could be far below what it sees now.
	on := ts-d.first >= minSeason && d.maeS < seasonGain*d.madL
	switch {
	case on && !d.seasonOn:
		// Observing: the record is set at once, whatever the cadence.
		d.recS = max(d.recS*decay, d.shortS)
	case on:
		if rs := record(&d.recS, d.shortS, decay, k); rs > r {
			r = rs
			res = evidence(Season, predS, x, sigS)
		}
	}
	d.seasonOn = on
	// The weekly channel speaks, on the same terms, where the weekly
	// correction explains the series better than the daily profile: a
	// series with a weekly cycle. Elsewhere it stays silent, but keeps
	// its record, so that it does not start from none when it speaks.
	onW := on && ts-d.first >= minWeek && d.maeW < seasonGain*d.maeS
	if rw := record(&d.recW, d.shortW, decay, k); onW && d.weekOn && rw > r {
		r = rw
		res = evidence(Week, predW, x, sigW)
	}
	d.weekOn = onW
	if d.since < 2*refractory {
		d.since += k
	}
	if d.w < warmup {
		res.Learning = true
		return res
	}
	r4 := float64(r) * float64(r)
	r4 *= r4
	// A series that alarms often is judged more strictly: past its first
	// few alarms, each recent one makes the next record break less news.
	d.alarms *= 1 - k*(1-alarmDecay)
	r4 /= 1 + alarmWeight*max(0, float64(d.alarms)-freeAlarms)
	score := r4 / (1 + r4)

	// After an alarm, damp repeats of the same event for a while unless
	// it escalates: a detector that fires once per event is one that can
	// be trusted.
	switch {
	case d.since <= refractory:
		if float32(score) > d.alarm+escalateBy {
			d.alarm = float32(score)
		} else {
			score *= damping
		}
	case score >= alarmAt:
		d.alarms++
		d.since = 0
		d.alarm = float32(score)
	}
	res.Score = score
	return res
}

func evidence(c Channel, pred, x, sigma float32) Result {
	e := float64(pred)
	s := sigmasInBand * float64(sigma)
	return Result{Channel: c, Expected: e, Lower: e - s, Upper: e + s, Deviation: float64((x - pred) / sigma)}
}

// record returns x relative to the decaying record *m (plus a floor), then
// lets x raise the record, the old one decayed by decay. A sample of weight
// k (in steps) raises it k of the way to x: at 5-minute samples a new
// record is set at once, as it always was; at 10-second samples it is set
// over a step, so an event that builds up over a few minutes is judged
// against the record from before it, not one it set a sample ago.
func record(m *float32, x, decay, k float32) float32 {
	r := x / (*m + recordFloor)
	*m = raise(*m, x, decay, k)
	return r
}

// raise is a record m decayed by decay, raised k of the way to x, and by
// one event to at most twice what it was (plus the floor): one absurd
// value must not set a record that hides every later event.
func raise(m, x, decay, k float32) float32 {
	return max(m*decay, m+k*(min(x, 2*m+recordFloor)-m))
}

// slots maps a unix time to the two profile slots around it and the weight
// of the second, so the profile is piecewise linear over the day.
func slots(ts int64) (int, int, float32) {
	sec := ts % day
	if sec < 0 {
		sec += day
	}
	pos := float32(sec)*buckets/day - 0.5
	if pos < 0 {
		pos += buckets
	}
	b0 := int(pos)
	w := pos - float32(b0)
	if b0 >= buckets {
		b0 = buckets - 1
	}
	b1 := b0 + 1
	if b1 == buckets {
		b1 = 0
	}
	return b0, b1, w
}

// weekSlot maps a unix time to its slot of the week.
func weekSlot(ts int64) int {
	days, sec := ts/day, ts%day
	if sec < 0 {
		days, sec = days-1, sec+day
	}
	dow := days % 7
	if dow < 0 {
		dow += 7
	}
	return int(dow)*weekSlots + int(sec*weekSlots/day)
}

// clip winsorises an error at clipErr times the current MAE, once the MAE
// rests on enough samples to be trusted, so one spike does not blow up the
// scale that judges the next.
func (d *Detector) clip(e, mae float32) float32 {
	if d.w > trackFrom && e > clipErr*mae {
		return clipErr * mae
	}
	return e
}

// limit clamps e to ±lim when on.
func limit(e, lim float32, on bool) float32 {
	if on {
		return max(-lim, min(e, lim))
	}
	return e
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
