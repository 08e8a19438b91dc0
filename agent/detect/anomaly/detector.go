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
	alphaLevel   float32 = 1.0   // naive predictor: EWMA of the value
	alphaSLevel  float32 = 0.003 // deseasonalised level of the seasonal predictor
	alphaSeason  float32 = 0.2   // seasonal offsets, per visit of a slot
	alphaErr     float32 = 0.01  // mean absolute error of each predictor
	alphaShort   float32 = 0.3   // short average of deviations
	alphaLong    float32 = 0.005 // long-run level and spread
	clipErr      float32 = 4.0   // residuals above clipErr*MAE update the MAE as clipErr*MAE
	maxDev       float32 = 12.0  // deviations are capped here
	minRelScale  float32 = 1e-4  // scale floor relative to the level's magnitude
	absScale     float32 = 1e-9  // absolute scale floor
	seasonGain   float32 = 0.8   // seasonal model must beat naive MAE by this factor
	maxShare     float32 = 1.0
	maxDecay     float32 = 0.9998
	slotShare    float32 = 1
	slotDecay    float32 = 0.97
	alphaSlotMad float32 = 0.05
	envMode      float32 = 0
	envDecay     float32 = 0.995
	midMode      float32 = 1
	alphaMid     float32 = 0.1
	qMul         float32 = 1
	escalate     float32 = 1
	escMargin    float32 = 0.05
	qMin         float32 = 0.01
	slotS        float32 = 1
	youngGamma   float32 = 0
	youngRef     float32 = 3000
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
	n          uint32
	since      uint32  // samples since the last alarm
	first      int64   // unix seconds of the first sample
	last       int64   // unix seconds of the previous sample
	level      float32 // channel N: fast EWMA of the value
	madN       float32 // channel N: mean absolute error
	shortN     float32 // channel N: short average of |deviation|
	slevel     float32 // channel S: deseasonalised level
	madS       float32 // channel S: mean absolute error
	shortS     float32 // channel S: short average of |deviation|
	longLevel  float32 // channel L: slow EWMA of the value
	madL       float32 // channel L: mean absolute deviation
	qN, qS, qL quantile
	qM         quantile
	madM       float32
	mid        float32
	env        float32
	// slot holds what the detector learns per time of day. The fields
	// of one slot sit together so an update touches one or two cache
	// lines of the profile, not one per field.
	slot [buckets]slotState
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
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
		// A value the model cannot hold is neither scored nor learnt,
		// so one bad reading does not poison the series' state.
		return Result{Expected: float64(d.level), Lower: float64(d.level), Upper: float64(d.level), Learning: d.n < warmup}
	}
	x := float32(v)
	if d.n == 0 {
		d.first, d.last = ts, ts
		d.level, d.slevel, d.longLevel, d.mid = x, x, x, x
		d.n = 1
		return Result{Expected: v, Lower: v, Upper: v, Learning: true}
	}
	d.n++
	b0, b1, w1 := slots(ts)
	s0, s1 := &d.slot[b0], &d.slot[b1]
	seasonal := s0.mean*(1-w1) + s1.mean*w1
	floor := absScale + minRelScale*abs32(d.longLevel)
	tracking := d.n > warmup/3
	// While young, averages are plain means (weight 1/n) so the first
	// samples set the scale instead of a zero start.
	young := 1 / float32(d.n)
	aErr, aLong := max(alphaErr, young), max(alphaLong, young)

	// Channel N: the value against a fast EWMA, for spikes and steps.
	eN := x - d.level
	sigN := normScale*d.madN + floor
	devN := eN / sigN
	d.shortN += alphaShort * (min(abs32(devN), maxDev) - d.shortN)
	d.madN += aErr * (clip(abs32(eN), d.madN, d.n) - d.madN)
	d.level += alphaLevel * eN

	// Channel S: the value against the daily profile, for a cycle that
	// breaks. It speaks only once a day of history is in the profile and
	// the profile explains the series better than a flat level does.
	predS := d.slevel + seasonal
	eS := x - predS
	smad := max(s0.mad*(1-w1)+s1.mad*w1, slotMadFloor*d.madS)
	sigS := normScale*smad + floor
	devS := eS / sigS
	d.shortS += alphaShort * (min(abs32(devS), maxDev) - d.shortS)
	d.madS += aErr * (clip(abs32(eS), d.madS, d.n) - d.madS)
	ce := clip(abs32(eS), d.madS, d.n)
	d.slevel += alphaSLevel * (x - seasonal - d.slevel)
	rs := x - d.slevel - seasonal
	s0.mean += alphaSeason * (1 - w1) * rs
	s1.mean += alphaSeason * w1 * rs
	s0.mad += alphaSlotMad * (1 - w1) * (ce - s0.mad)
	s1.mad += alphaSlotMad * w1 * (ce - s1.mad)

	// Channel L: the value against the long-run level and spread, for
	// shifts too slow for channel N.
	d.mid += alphaMid * (x - d.mid)
	eM := d.mid - d.longLevel
	devM := min(abs32(eM)/(normScale*d.madM+floor), maxDev)
	d.madM += aLong * (clip(abs32(eM), d.madM, d.n) - d.madM)
	eL := x - d.longLevel
	sigL := normScale*d.madL + floor
	devL := min(abs32(eL)/sigL, maxDev)
	d.longLevel += aLong * (x - d.longLevel)
	d.madL += aLong * (clip(abs32(eL), d.madL, d.n) - d.madL)
	if ts > d.last {
		d.last = ts
	}

	res := Result{Expected: float64(x - eN), Deviation: float64(devN)}
	res.Lower, res.Upper = res.Expected-3*float64(sigN), res.Expected+3*float64(sigN)
	if !tracking {
		res.Learning = true
		d.since++
		return res
	}
	r := d.qN.ratio(d.shortN)
	rl := d.qL.ratio(devL)
	if midMode > 0 {
		if rm := d.qM.ratio(devM); rm > rl {
			rl = rm
		}
	}
	if rl > r {
		r = rl
		res.Expected, res.Deviation = float64(x-eL), float64(eL/sigL)
		res.Lower, res.Upper = res.Expected-3*float64(sigL), res.Expected+3*float64(sigL)
	}
	if ts-d.first >= minSeason && d.madS < seasonGain*d.madL {
		rs := d.qS.ratio(d.shortS)
		if rs > r {
			r = rs
			res.Expected, res.Deviation = float64(predS), float64(devS)
			res.Lower, res.Upper = res.Expected-3*float64(sigS), res.Expected+3*float64(sigS)
		}
	}
	if d.since < math.MaxUint32 {
		d.since++
	}
	if d.n < warmup {
		res.Learning = true
		return res
	}
	if youngGamma > 0 && float32(d.n) < youngRef {
		r *= float32(math.Pow(float64(float32(d.n)/youngRef), float64(youngGamma)))
	}
	r2 := float64(r * r)
	score := r2 * r2 / (1 + r2*r2)
	if envMode > 0 {
		e := d.env * envDecay
		if float32(score) > e {
			d.env = float32(score)
		} else {
			d.env = e
			score *= refrFactor
		}
	} else if d.since <= refractory {
		if escalate > 0 && float32(score) > d.env+escMargin {
			d.env = float32(score)
		} else {
			score *= refrFactor
		}
	} else if score >= alarmAt {
		d.since = 0
		d.env = float32(score)
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

// clip winsorises an error at clipErr times the current MAE, once the MAE
// rests on enough samples to be trusted.
func clip(e, mad float32, n uint32) float32 {
	if n > warmup/3 && e > clipErr*mad {
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
func (t *quantile) ratio(x float32) float32 {
	// A multiplicative tracker stuck at zero would never move.
	t.q = max(t.q, qMin)
	ref := qMul * t.q
	if mm := maxShare * t.m; mm > ref {
		ref = mm
	}
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

// slotState is what a Detector learns about one slot of the day.
type slotState struct {
	mean float32 // seasonal offset from the deseasonalised level
	mad  float32 // mean absolute error of the seasonal predictor
}
