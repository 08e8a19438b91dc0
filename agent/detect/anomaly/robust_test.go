package anomaly

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// feed runs values v, dt apart from t0, through d and returns the scores.
func feed(d *Detector, from int, v []float64, dt time.Duration) []float64 {
	s := make([]float64, len(v))
	for i, x := range v {
		s[i] = d.Update(t0.Add(time.Duration(from+i)*dt), x).Score
	}
	return s
}

// TestHugeValueBlindsAtMostRefractory: one value of 1e12 on a series of
// 100±1 is an alarm, and once the refractory period after it is over a
// shift of 10 sigmas alarms as it does on a series that never saw the huge
// value. Before, the huge value dragged the learnt levels by ~1e9 and the
// series stayed blind for weeks.
func TestHugeValueBlindsAtMostRefractory(t *testing.T) {
	for _, dt := range []time.Duration{step, 10 * time.Second} {
		per := int(step / dt) // samples per step
		n, huge := 3000*per, 1000*per
		shiftAt := huge + (refractory+20)*per
		mk := func(withHuge bool) []float64 {
			return series(n, 5, func(i int) float64 {
				switch {
				case withHuge && i == huge:
					return 1e12
				case i >= shiftAt:
					return 110
				}
				return 100
			})
		}
		var clean, hit Detector
		want := feed(&clean, 0, mk(false), dt)
		got := feed(&hit, 0, mk(true), dt)
		if got[huge] < 0.5 {
			t.Errorf("cadence %v: the huge value scored %.3f, want an alarm (>= 0.5)", dt, got[huge])
		}
		w, _ := maxIn(want, shiftAt, shiftAt+10*per)
		g, at := maxIn(got, shiftAt, shiftAt+10*per)
		t.Logf("cadence %v: shift %v after the huge value: %.3f at %d (%.3f without the huge value)", dt,
			time.Duration(shiftAt-huge)*dt, g, at, w)
		if w < 0.5 {
			t.Fatalf("cadence %v: without the huge value the shift scores %.3f: the test needs a detected shift", dt, w)
		}
		if g < 0.5 {
			t.Errorf("cadence %v: after the huge value and its refractory period the shift scores %.3f, want an alarm (>= 0.5)", dt, g)
		}
		for _, f := range floatFields(&hit) {
			if math.Abs(float64(f.v)) > 1e6 {
				t.Errorf("cadence %v: %s = %g after the huge value: it was learnt", dt, f.name, f.v)
			}
		}
	}
}

type field struct {
	name string
	v    float32
}

// floatFields lists every float32 of a Detector's state by name.
func floatFields(d *Detector) []field {
	var out []field
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), path+"[]")
			}
		case reflect.Float32:
			out = append(out, field{path, float32(v.Float())})
		}
	}
	walk(reflect.ValueOf(d).Elem(), "Detector")
	return out
}

// TestExtremeValuesLeaveNoNaN: ±3e38, ±MaxFloat32, 1e30, NaN and ±Inf,
// before, during and after the warm-up, at 5 minutes and at 10 seconds,
// never leave a NaN or an infinity in the state, and every score is in
// [0,1].
func TestExtremeValuesLeaveNoNaN(t *testing.T) {
	extremes := []float64{3e38, -3e38, math.MaxFloat32, -math.MaxFloat32, 1e30, -1e30, math.NaN(), math.Inf(1), math.Inf(-1), 1e38, 0}
	for _, dt := range []time.Duration{step, 10 * time.Second} {
		r := rand.New(rand.NewPCG(3, 4))
		var d Detector
		for i := range 20000 {
			v := 100 + r.NormFloat64()
			if i%37 == 0 || (i > 5000 && i < 5010) {
				v = extremes[r.IntN(len(extremes))]
			}
			res := d.Update(t0.Add(time.Duration(i)*dt), v)
			if !(res.Score >= 0 && res.Score <= 1) {
				t.Fatalf("cadence %v, sample %d (%g): score %v", dt, i, v, res.Score)
			}
			if i%101 == 0 || i%37 == 0 {
				for _, f := range floatFields(&d) {
					if f.v != f.v || math.IsInf(float64(f.v), 0) {
						t.Fatalf("cadence %v, sample %d (%g): %s = %v", dt, i, v, f.name, f.v)
					}
				}
			}
		}
	}
}

// TestSameDetectionsAt10sAnd5m feeds one signal, a daily cycle with noise
// plus three events (a level shift for two hours, a drop to near zero for
// an hour, a surge for 30 minutes), sampled every 10 seconds and every 5
// minutes, and irregularly (1 s to 60 s apart, with a 2-hour gap). All
// detect the same events, each within 10 minutes of its start, and nothing
// else.
func TestSameDetectionsAt10sAnd5m(t *testing.T) {
	const days = 6
	start := t0
	type event struct {
		at, dur time.Duration
		f       func(v float64) float64
	}
	events := []event{
		{3*24*time.Hour + 10*time.Hour, 2 * time.Hour, func(v float64) float64 { return v + 60 }},
		{4*24*time.Hour + 15*time.Hour, time.Hour, func(v float64) float64 { return 2 }},
		{5*24*time.Hour + 3*time.Hour, 30 * time.Minute, func(v float64) float64 { return v * 3 }},
	}
	signal := func(el time.Duration, r *rand.Rand) float64 {
		v := 200 + 100*math.Sin(2*math.Pi*el.Hours()/24) + 5*r.NormFloat64()
		for _, e := range events {
			if el >= e.at && el < e.at+e.dur {
				v = e.f(v)
			}
		}
		return v
	}
	// dt 0: irregular, 1 s to 60 s apart, with a 2-hour gap on day 2.
	detect := func(dt time.Duration) []time.Duration {
		r := rand.New(rand.NewPCG(8, 9))
		jitter := rand.New(rand.NewPCG(10, 11))
		var d Detector
		var alarms []time.Duration
		for el := time.Duration(0); el < days*24*time.Hour; {
			res := d.Update(start.Add(el), signal(el, r))
			if res.Score >= 0.5 {
				alarms = append(alarms, el)
			}
			next := dt
			if dt == 0 {
				next = time.Duration(1+jitter.IntN(60)) * time.Second
				if el < 2*24*time.Hour && el+next >= 2*24*time.Hour {
					next += 2 * time.Hour
				}
			}
			el += next
		}
		return alarms
	}
	for _, dt := range []time.Duration{10 * time.Second, step, 0} {
		alarms := detect(dt)
		t.Logf("cadence %v: alarms at %v", dt, alarms)
		found := make([]bool, len(events))
		for _, a := range alarms {
			ok := false
			for i, e := range events {
				if a >= e.at && a < e.at+e.dur+time.Hour {
					ok = true
					if a < e.at+10*time.Minute {
						found[i] = true
					}
				}
			}
			if !ok {
				t.Errorf("cadence %v: alarm at %v, outside every event", dt, a)
			}
		}
		for i, f := range found {
			if !f {
				t.Errorf("cadence %v: event %d at %v not detected within 10 minutes", dt, i, events[i].at)
			}
		}
	}
}
