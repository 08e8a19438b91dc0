package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchSeries is the number of interleaved series of BenchmarkSetUpdate.
const benchSeries = 100_000

var benchValues = func() []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float64, 4096)
	for i := range v {
		v[i] = 100 + 20*math.Sin(float64(i)*2*math.Pi/288) + 5*r.NormFloat64()
	}
	return v
}()

// BenchmarkSetUpdate feeds 100 000 series, interleaved in a shuffled order
// (so consecutive updates touch unrelated memory, as an agent polling many
// devices does), one sample per series per minute. The set is warmed past
// the learning period first, so every measured update scores.
func BenchmarkSetUpdate(b *testing.B) {
	s := NewSet(benchSeries, time.Hour)
	r := rand.New(rand.NewPCG(3, 4))
	keys := make([]uint64, benchSeries)
	for i := range keys {
		keys[i] = r.Uint64()
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	round := 0
	feed := func(rounds int) {
		for ; rounds > 0; rounds-- {
			t := t0.Add(time.Duration(round) * time.Minute)
			for j, k := range keys {
				if _, err := s.Update(k, t, benchValues[(round+j)&4095]); err != nil {
					b.Fatal(err)
				}
			}
			round++
		}
	}
	feed(warmup)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	n := 0
	for n < b.N {
		t := t0.Add(time.Duration(round) * time.Minute)
		for j := 0; j < len(keys) && n < b.N; j, n = j+1, n+1 {
			s.Update(keys[j], t, benchValues[(round+j)&4095])
		}
		round++
	}
	b.StopTimer()
	reportRate(b, cpuTime()-cpu0)
	// per series: its slot, and its share of the index
	b.ReportMetric(float64(SlotBytes)+float64(4*len(s.index))/benchSeries, "B/series")
	if s.Stats().Series != benchSeries {
		b.Fatalf("set holds %d series, want %d", s.Stats().Series, benchSeries)
	}
}

// BenchmarkDetectorUpdate is one series in a hot cache: the cost of the
// arithmetic alone.
func BenchmarkDetectorUpdate(b *testing.B) {
	var d Detector
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i := range warmup {
		d.update(t0+int64(i)*60, benchValues[i&4095])
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		d.update(t0+int64(warmup+i)*60, benchValues[i&4095])
	}
	b.StopTimer()
	reportRate(b, cpuTime()-cpu0)
	b.ReportMetric(float64(StateBytes), "B/series")
}

// reportRate reports updates per second of wall time and per second of CPU
// time; the second is the per-core figure on a machine shared with other
// work.
func reportRate(b *testing.B, cpu time.Duration) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "updates/s")
	}
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "updates/cpu-s")
	}
}
