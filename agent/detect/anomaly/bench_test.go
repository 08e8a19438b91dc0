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

// The Set benchmarks feed 100 000 series one sample per series per minute,
// warmed past the learning period first so every measured update scores.
// In poll order, series come in the order they first arrived, as an agent
// polling the same devices on a schedule sees them; their slots are then
// visited in address order. Shuffled, consecutive updates touch slots far
// apart: the worst case for caches and TLB.
func BenchmarkSetUpdate(b *testing.B)              { benchSet(b, false, 0) }
func BenchmarkSetUpdateShuffled(b *testing.B)      { benchSet(b, true, 0) }
func BenchmarkSetUpdateBatch(b *testing.B)         { benchSet(b, false, 1000) }
func BenchmarkSetUpdateBatchShuffled(b *testing.B) { benchSet(b, true, 1000) }

// benchSet runs the Set benchmarks; poll > 0 feeds UpdateBatch that many
// samples at a time, 0 feeds Update one by one.
func benchSet(b *testing.B, shuffled bool, poll int) {
	s := NewSet(benchSeries, time.Hour)
	r := rand.New(rand.NewPCG(3, 4))
	keys := make([]uint64, benchSeries)
	for i := range keys {
		keys[i] = r.Uint64()
	}
	values := make([]float64, benchSeries)
	out := make([]Result, max(poll, 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	round := 0
	// feed sends up to limit samples of the next round and says how many.
	feed := func(limit int) int {
		t := t0.Add(time.Duration(round) * time.Minute)
		for j := range values {
			values[j] = benchValues[(round+j)&4095]
		}
		n := min(limit, benchSeries)
		if poll == 0 {
			for j := range n {
				if _, err := s.Update(keys[j], t, values[j]); err != nil {
					b.Fatal(err)
				}
			}
		} else {
			for j := 0; j < n; j += poll {
				k := min(poll, n-j)
				if d := s.UpdateBatch(keys[j:j+k], t, values[j:j+k], out[:k]); d != 0 {
					b.Fatalf("%d samples dropped", d)
				}
			}
		}
		round++
		return n
	}
	for range warmup {
		feed(benchSeries)
	}
	if shuffled {
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for n := 0; n < b.N; {
		n += feed(b.N - n)
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
