package detect

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkObserve is the cost of one healthy poll of a 48-port switch with
// the shipped rules: status, speed and octet counters per port, scored for
// anomalies.
func BenchmarkObserve(b *testing.B) {
	const devices = 100
	start := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	var sims []*simDevice
	for i := 0; i < devices; i++ {
		d := newDevice(fmt.Sprintf("sw%d", i), 10*time.Second, start.Add(-time.Hour), uint64(i))
		for j := 1; j <= 48; j++ {
			d.ifaces = append(d.ifaces, &simIface{index: j, name: fmt.Sprintf("ge-0/0/%d", j), speedMb: 1000, base: 1e6, wrap: 1 << 64})
		}
		sims = append(sims, d)
	}
	e := New("edge-1", Options{MaxAnomalySeries: devices * 48 * 2})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := sims[i%devices]
		t := start.Add(time.Duration(i/devices) * 10 * time.Second)
		p := d.poll(t, 10*time.Second)
		b.StartTimer()
		e.Observe(p)
		b.StopTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/48, "ns/port")
}
