package anomaly

import (
	"math"
	"time"
	"unsafe"
)

// Tuning shared by every series. They are constants, not options: the method
// is judged with one set of parameters for every series, and a per-series knob
// would invite per-file tuning.
const (
	// warmup is how many samples a new series is observed before it may
	// score: scale estimates need that many residuals to mean anything.
	warmup = 150
	// buckets splits a day into equal slots; seasonal offsets are
	// interpolated between slot centres.
	buckets   = 48
	day       = 86400 // seconds
	minSeason = day   // seconds of history before the seasonal model may be used
)

var (
	refractory   uint32  = 200   // samples an alarm suppresses repeats for
	alphaLevel   float32 = 0.5   // naive predictor: EWMA of the value
	alphaSLevel  float32 = 0.1   // deseasonalised level of the seasonal predictor
	alphaSeason  float32 = 0.1   // seasonal offsets, per visit of a slot
	alphaErr     float32 = 0.01  // mean absolute error of each predictor
	alphaShort   float32 = 0.3   // short average of deviations
	alphaLong    float32 = 0.005 // long-run level and spread
	clipErr      float32 = 4.0   // residuals above clipErr*MAE update the MAE as clipErr*MAE
	maxDev       float32 = 12.0  // deviations are capped here
	minRelScale  float32 = 1e-4  // scale floor relative to the level's magnitude
	absScale     float32 = 1e-9  // absolute scale floor
	seasonGain   float32 = 0.8   // seasonal model must beat naive MAE by this factor
	maxShare     float32 = 1.0
	maxDecay     float32 = 0.9995
	slotShare    float32 = 1
	slotDecay    float32 = 0.97
	qEta         float32 = 0.05
	qP           float32 = 0.99
	qFloor       float32 = 0.5
	slotMadFloor float32 = 0.5    // a slot's MAE is at least this share of the global one
	normScale    float32 = 1.2533 // sigma / mean absolute deviation of a normal law
	alarmAt      float64 = 0.5
	refrFactor   float64 = 0.5
)

// Result is the score of one sample and the evidence behind it.
type Result struct {
	// Score is the anomaly score in [0,1]: 0 while the series is learning
	// or behaves as expected, close to 1 when the recent deviation is far
	// in the tail of what this series has shown so far.
	Score float64
	// Expected is the value the model predicted for this sample.
	Expected float64
	// Lower and Upper bound the band of usual values (Expected ± 3 sigma).
	Lower, Upper float64
	// Deviation is (value - Expected) in units of the series' robust sigma.
	Deviation float64
	// Learning is true while the series has too little history to score.
	Learning bool
}

// Detector scores one series. Its zero value is ready to use; it never
// allocates and its size is fixed (see StateBytes).
type Detector struct {
	n         uint32
	since     uint32 // samples since the last alarm
	first     int64  // unix seconds of the first sample
	last      int64  // unix seconds of the previous sample
	level     float32
	slevel    float32
	madN      float32 // MAE of the naive predictor
	madS      float32 // MAE of the seasonal predictor
	short     float32
	qShort    quantile
	qLong     quantile
	memShort  [buckets]float32
	memLong   [buckets]float32
	longLevel float32
	madL      float32
	alarm     float32 // score of the last alarm
	prof      [buckets]float32
	pmad      [buckets]float32 // MAE of the seasonal predictor per slot
}

// StateBytes is the size of one series' state in bytes.
const StateBytes = int(unsafe.Sizeof(Detector{}))

// Update scores value v observed at t and learns from it. Samples must come
// in time order; a sample not after the previous one is scored but its time
// is not used for the seasonal profile.
func (d *Detector) Update(t time.Time, v float64) Result {
	return d.update(t.Unix(), v)
}

func (d *Detector) update(ts int64, v float64) Result {
	x := float32(v)
	if d.n == 0 {
		d.first, d.last = ts, ts
		d.level, d.slevel, d.longLevel = x, x, x
		d.n = 1
		return Result{Expected: v, Lower: v, Upper: v, Learning: true}
	}
	d.n++
	b0, b1, w1 := slots(ts)
	seasonal := d.prof[b0]*(1-w1) + d.prof[b1]*w1

	predN := d.level
	predS := d.slevel + seasonal
	eN := abs32(x - predN)
	eS := abs32(x - predS)

	floor := absScale + minRelScale*abs32(d.level)
	useS := ts-d.first >= minSeason && d.madS < seasonGain*d.madN
	pred, e, mad := predN, x-predN, d.madN
	if useS {
		smad := d.pmad[b0]*(1-w1) + d.pmad[b1]*w1
		if smad < slotMadFloor*d.madS {
			smad = slotMadFloor * d.madS
		}
		pred, e, mad = predS, x-predS, smad
	}
	sigma := normScale*mad + floor
	dev := e / sigma

	// Learn: errors (winsorised so one spike does not inflate the scale),
	// then the two predictors.
	d.madN += alphaErr * (clip(eN, d.madN) - d.madN)
	d.madS += alphaErr * (clip(eS, d.madS) - d.madS)
	d.level += alphaLevel * (x - d.level)
	d.slevel += alphaSLevel * (x - seasonal - d.slevel)
	rs := x - d.slevel - seasonal
	d.prof[b0] += alphaSeason * (1 - w1) * rs
	d.prof[b1] += alphaSeason * w1 * rs
	ce := clip(eS, d.madS)
	d.pmad[b0] += alphaSeason * (1 - w1) * (ce - d.pmad[b0])
	d.pmad[b1] += alphaSeason * w1 * (ce - d.pmad[b1])
	if ts > d.last {
		d.last = ts
	}

	res := Result{
		Expected:  float64(pred),
		Lower:     float64(pred - 3*sigma),
		Upper:     float64(pred + 3*sigma),
		Deviation: float64(dev),
	}

	// Anomaly likelihood: a short average of deviations compared with the
	// long-run distribution of that average.
	a := abs32(dev)
	if a > maxDev {
		a = maxDev
	}
	d.short += alphaShort * (a - d.short)
	r := d.qShort.ratio(d.short, &d.memShort, b0, b1, w1)

	// Level novelty: the value against the series' long-run location and
	// spread, for shifts too slow for the short-term predictor.
	eL := x - d.longLevel
	devL := abs32(eL) / (normScale*d.madL + floor)
	d.longLevel += alphaLong * eL
	d.madL += alphaLong * (clip(abs32(eL), d.madL) - d.madL)
	if devL > maxDev {
		devL = maxDev
	}
	if rl := d.qLong.ratio(devL, &d.memLong, b0, b1, w1); rl > r {
		r = rl
	}
	if d.since < math.MaxUint32 {
		d.since++
	}
	if d.n < warmup {
		res.Learning = true
		return res
	}
	r2 := float64(r * r)
	score := r2 * r2 / (1 + r2*r2)
	if d.since <= refractory {
		score *= refrFactor
	} else if score >= alarmAt {
		d.since = 0
	}
	res.Score = score
	return res
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

func clip(e, mad float32) float32 {
	if mad > 0 && e > clipErr*mad {
		return clipErr * mad
	}
	return e
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// quantile tracks a high quantile (qP) of a positive signal with
// multiplicative steps, so it needs no memory of past values and works at
// any magnitude.
type quantile struct{ q, m float32 }

// ratio returns x relative to the quantile seen so far, then learns x.
func (t *quantile) ratio(x float32, mem *[buckets]float32, b0, b1 int, w1 float32) float32 {
	if t.q == 0 {
		t.q = x
	}
	ref := t.q
	if mm := maxShare * t.m; mm > ref {
		ref = mm
	}
	lo, hi := b0-1, b1+1
	if lo < 0 {
		lo += buckets
	}
	if hi >= buckets {
		hi -= buckets
	}
	sm := max(mem[lo], mem[b0], mem[b1], mem[hi]) * slotShare
	if sm > ref {
		ref = sm
	}
	bn := b0
	if w1 >= 0.5 {
		bn = b1
	}
	mem[bn] = max(mem[bn]*slotDecay, x)
	r := x / (ref + qFloor)
	t.m *= maxDecay
	if x > t.m {
		t.m = x
	}
	if x > t.q {
		t.q *= 1 + qEta
	} else {
		t.q *= 1 - qEta*(1-qP)/qP
	}
	return r
}
