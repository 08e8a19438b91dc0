package anomaly

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

const step = 5 * time.Minute

// series builds n samples of f(i) plus Gaussian noise of sd 1, 5 minutes
// apart, from a fixed seed.
func series(n int, seed uint64, f func(i int) float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float64, n)
	for i := range v {
		v[i] = f(i) + r.NormFloat64()
	}
	return v
}

func scores(v []float64) []float64 {
	var d Detector
	s := make([]float64, len(v))
	for i, x := range v {
		s[i] = d.Update(t0.Add(time.Duration(i)*step), x).Score
	}
	return s
}

func maxIn(s []float64, from, to int) (float64, int) {
	m, at := -1.0, -1
	for i := from; i < to && i < len(s); i++ {
		if s[i] > m {
			m, at = s[i], i
		}
	}
	return m, at
}

// checkChange asserts a high score within [at, at+within) that stands above
// every score elsewhere once the series has some history (from learnt on),
// so that one threshold separates the change from the rest.
func checkChange(t *testing.T, s []float64, at, within int) {
	t.Helper()
	const learnt = 1000
	hit, hitAt := maxIn(s, at, at+within)
	before, bAt := maxIn(s, learnt, at)
	after, aAt := maxIn(s, at+within, len(s))
	t.Logf("near the change %.3f at %d; before %.3f at %d; after %.3f at %d", hit, hitAt, before, bAt, after, aAt)
	if hit < 0.6 {
		t.Errorf("max score near the change at %d is %.3f (at %d), want >= 0.6", at, hit, hitAt)
	}
	if before > hit-0.02 || before > 0.65 {
		t.Errorf("max score before the change is %.3f at %d, want <= 0.65 and below the change's %.3f", before, bAt, hit)
	}
	if after > hit-0.02 || after > 0.65 {
		t.Errorf("max score after the change is %.3f at %d, want <= 0.65 and below the change's %.3f", after, aAt, hit)
	}
}

func TestScores(t *testing.T) {
	const n = 5000
	day := int(24 * time.Hour / step)
	cases := []struct {
		name string
		v    []float64
		at   int
	}{
		{"step", series(n, 1, func(i int) float64 {
			if i >= 4000 {
				return 110
			}
			return 100
		}), 4000},
		{"spike", series(n, 2, func(i int) float64 {
			if i == 4000 {
				return 100 + 15
			}
			return 100
		}), 4000},
		{"level shift", series(n, 3, func(i int) float64 {
			// a ramp of 8 sigma over 20 samples: too slow for the
			// sample-to-sample predictor, caught by level novelty
			return 100 + 8*math.Min(1, math.Max(0, float64(i-4000)/20))
		}), 4000},
		{"seasonal break", series(16*day, 4, func(i int) float64 {
			// a daily cycle of amplitude 20 that stops for a day after
			// six days
			if i >= 14*day && i < 15*day {
				return 100
			}
			return 100 + 20*math.Sin(2*math.Pi*float64(i)/float64(day))
		}), 14 * day},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkChange(t, scores(c.v), c.at, 60)
		})
	}
}

// TestScoreRange feeds awkward input: a constant run, a random walk, huge
// and tiny magnitudes, and values the model must not learn (NaN, ±Inf).
func TestScoreRange(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var d Detector
	walk := 0.0
	for i := range 20000 {
		var v float64
		switch {
		case i < 500:
			v = 42 // constant: zero spread must not divide by zero
		case i%997 == 0:
			v = math.NaN()
		case i%1999 == 0:
			v = math.Inf(1 - 2*(i%2))
		case i%3001 == 0:
			v = 1e30
		case i < 10000:
			walk += r.NormFloat64()
			v = walk
		default:
			v = 1e-6 * r.ExpFloat64()
		}
		res := d.Update(t0.Add(time.Duration(i)*time.Minute), v)
		if !(res.Score >= 0 && res.Score <= 1) {
			t.Fatalf("sample %d (%g): score %v outside [0,1]", i, v, res.Score)
		}
		for _, f := range []float64{res.Expected, res.Lower, res.Upper, res.Deviation} {
			if math.IsNaN(f) {
				t.Fatalf("sample %d (%g): evidence has NaN: %+v", i, v, res)
			}
		}
		if i < 500 && res.Score != 0 {
			t.Fatalf("sample %d of a constant series scored %v, want 0", i, res.Score)
		}
	}
}

// TestConstantThenChange: a series that never moved must still alarm when it
// does, although its spread so far is zero.
func TestConstantThenChange(t *testing.T) {
	v := make([]float64, 3000)
	for i := range v {
		v[i] = 5
		if i >= 2000 {
			v[i] = 6
		}
	}
	s := scores(v)
	if m, at := maxIn(s, 0, 2000); m != 0 {
		t.Errorf("constant part scored %.3f at %d, want 0", m, at)
	}
	if m, at := maxIn(s, 2000, 2010); m < 0.9 {
		t.Errorf("change of a constant series scored %.3f at %d, want >= 0.9", m, at)
	}
}

func TestDeterministic(t *testing.T) {
	v := series(5000, 5, func(i int) float64 { return 10 * math.Sin(float64(i)/40) })
	var a, b Detector
	s := NewSet(4, time.Hour)
	for i, x := range v {
		ts := t0.Add(time.Duration(i) * step)
		ra, rb := a.Update(ts, x), b.Update(ts, x)
		rs, err := s.Update(77, ts, x)
		if err != nil {
			t.Fatal(err)
		}
		if ra != rb || ra != rs {
			t.Fatalf("sample %d: results differ: %+v, %+v, %+v", i, ra, rb, rs)
		}
	}
	if a != b {
		t.Fatal("detectors fed the same samples hold different state")
	}
}

func TestNoAllocs(t *testing.T) {
	var d Detector
	i := 0
	if n := testing.AllocsPerRun(10000, func() {
		d.Update(t0.Add(time.Duration(i)*step), benchValues[i&4095])
		i++
	}); n != 0 {
		t.Errorf("Detector.Update allocates %v times per call, want 0", n)
	}
	s := NewSet(1000, time.Hour)
	i = 0
	if n := testing.AllocsPerRun(100000, func() {
		s.Update(uint64(i%1000), t0.Add(time.Duration(i/1000)*time.Minute), benchValues[i&4095])
		i++
	}); n != 0 {
		t.Errorf("Set.Update allocates %v times per call, want 0", n)
	}
	keys, values, out := make([]uint64, 100), make([]float64, 100), make([]Result, 100)
	for j := range keys {
		keys[j] = uint64(j * 7)
	}
	i = 0
	if n := testing.AllocsPerRun(1000, func() {
		s.UpdateBatch(keys, t0.Add(time.Duration(i)*time.Minute), values, out)
		i++
	}); n != 0 {
		t.Errorf("Set.UpdateBatch allocates %v times per call, want 0", n)
	}
}

// TestStateSize: the state is one flat value of a fixed size: no pointers,
// slices, maps or strings that could grow, and within the 1 KB budget.
func TestStateSize(t *testing.T) {
	if StateBytes != int(reflect.TypeFor[Detector]().Size()) {
		t.Fatalf("StateBytes %d != size of Detector %d", StateBytes, reflect.TypeFor[Detector]().Size())
	}
	if StateBytes > 1024 {
		t.Errorf("state is %d bytes per series, budget 1024", StateBytes)
	}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := range ty.NumField() {
				walk(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
		case reflect.Array:
			walk(ty.Elem(), path+"[]")
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.String, reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("%s is a %s: state would not be of fixed size", path, ty.Kind())
		}
	}
	walk(reflect.TypeFor[Detector](), "Detector")
	t.Logf("state: %d bytes per series", StateBytes)
}

// TestRecurringDailySpike: a spike every night at the same time stops
// scoring high once it has been seen a few times, while a larger one at an
// unusual hour alarms clearly.
func TestRecurringDailySpike(t *testing.T) {
	day := int(24 * time.Hour / step)
	nightly := 3*day/24 + 6 // 03:30
	odd := 12*day + 15*day/24
	v := series(14*day, 6, func(i int) float64 {
		switch {
		case i%day == nightly:
			return 100 + 12
		case i == odd:
			return 100 + 18
		}
		return 100
	})
	s := scores(v)
	for d := 4; d < 14; d++ {
		if got, _ := maxIn(s, d*day+nightly, d*day+nightly+3); got >= 0.6 {
			t.Errorf("nightly spike of day %d scored %.3f, want < 0.6", d, got)
		}
	}
	if got, _ := maxIn(s, odd, odd+3); got < alarmAt+0.15 {
		t.Errorf("a larger spike at 15:00 scored %.3f, want a clear alarm (>= %v)", got, alarmAt+0.15)
	}
}

// TestReturnFromSpike: the step back to the usual level after a spike is
// the end of the event, not a second, larger one.
func TestReturnFromSpike(t *testing.T) {
	for _, h := range []float64{14, 22, 30} {
		const at = 3000
		v := series(4000, 8, func(i int) float64 {
			switch i {
			case 1500:
				return 100 + 30
			case at:
				return 100 + h
			}
			return 100
		})
		s := scores(v)
		if s[at] < 0.6 {
			t.Errorf("spike of %v sigma scored %.3f, want >= 0.6", h, s[at])
		}
		if m, i := maxIn(s, at+1, at+10); m >= 0.25 {
			t.Errorf("return from a spike of %v sigma scored %.3f at %d, want < 0.25", h, m, i)
		}
	}
}

// TestFrequentAlarms: a series whose bursts keep breaking its records is
// judged more strictly after its first few alarms.
func TestFrequentAlarms(t *testing.T) {
	const every, first, bursts = 250, 1000, 16
	size := 4.0
	v := series(first+bursts*every, 9, func(i int) float64 {
		if i >= first && (i-first)%every == 0 {
			size *= 1.1
			return 100 + size
		}
		return 100
	})
	s := scores(v)
	if s[first] < 0.7 {
		t.Errorf("the first burst scored %.3f, want >= 0.7", s[first])
	}
	late := 0
	for k := bursts / 2; k < bursts; k++ {
		if s[first+k*every] >= alarmAt {
			late++
		}
	}
	if late > 5 {
		t.Errorf("%d of the last %d bursts alarmed, want at most 5", late, bursts/2)
	}
}

// weekly is a series of 5-minute samples with a daily cycle whose shape
// differs between weekdays and weekends, plus noise of sd 1; holiday (if
// not negative) is a weekday, counted from the first, that looks like a
// Sunday.
func weekly(weeks int, seed uint64, holiday int) []float64 {
	day := int(24 * time.Hour / step)
	return series(weeks*7*day, seed, func(i int) float64 {
		d, ph := i/day, 2*math.Pi*float64(i%day)/float64(day)
		if d%7 >= 5 || d == holiday { // t0 is a Monday
			return 80 + 6*math.Sin(ph-1)
		}
		return 100 + 25*math.Sin(ph) + 8*math.Sin(2*ph)
	})
}

// TestWeeklyCycle: on a series whose weekends differ from its weekdays, a
// weekday that looks like a Sunday (a holiday) scores high once the weekly
// cycle is learnt, while the weekly cycle itself does not.
func TestWeeklyCycle(t *testing.T) {
	day := int(24 * time.Hour / step)
	const weeks, holiday = 6, 30 // the Wednesday of the fifth week
	calm := scores(weekly(weeks, 11, -1))
	if m, i := maxIn(calm, 2*7*day, weeks*7*day); m >= 0.6 {
		t.Errorf("the weekly cycle itself scored %.3f on day %d, want < 0.6", m, i/day)
	}
	v := weekly(weeks, 11, holiday)
	var d Detector
	hit, hitAt, ch := 0.0, 0, Step
	for i, x := range v {
		r := d.Update(t0.Add(time.Duration(i)*step), x)
		if i >= holiday*day && i < (holiday+1)*day && r.Score > hit {
			hit, hitAt, ch = r.Score, i-holiday*day, r.Channel
		}
	}
	t.Logf("holiday scored %.3f at sample %d of the day, channel %v", hit, hitAt, ch)
	if hit < 0.6 {
		t.Errorf("a weekday that looks like a Sunday scored %.3f, want >= 0.6", hit)
	}
	if ch != Week {
		t.Errorf("the holiday was decided by channel %v, want %v", ch, Week)
	}
}
