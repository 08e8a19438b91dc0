package flow

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

type benchPackets struct {
	frames [][]byte
	ts     []int64
	wire   []int
}

// mixPackets generates n packets of the benchmark mix in memory.
func mixPackets(b *testing.B, n int) *benchPackets {
	b.Helper()
	cfg := synth.BenchMix()
	cfg.Duration = time.Duration(float64(cfg.Duration) * float64(n) / float64(cfg.Packets))
	cfg.Packets, cfg.ScanPorts, cfg.FloodSYNs = n, n/200, n/40
	m := synth.NewMix(cfg)
	p := &benchPackets{}
	// One arena, frames back to back, as a capture buffer holds them.
	var arena []byte
	var offs []int
	for {
		out, ts, wire, ok := m.Next(arena)
		if !ok {
			break
		}
		offs = append(offs, len(arena))
		arena = out
		p.ts, p.wire = append(p.ts, ts.UnixNano()), append(p.wire, wire)
	}
	offs = append(offs, len(arena))
	for i := range p.ts {
		p.frames = append(p.frames, arena[offs[i]:offs[i+1]])
	}
	return p
}

const benchN = 1 << 18

// run feeds the packets b.N times over, shifting timestamps on each pass so
// time keeps moving forward and flows keep expiring.
func (p *benchPackets) run(b *testing.B, fn func(data []byte, ts int64, wire int)) {
	span := p.ts[len(p.ts)-1] - p.ts[0] + int64(time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(p.frames)
		fn(p.frames[k], p.ts[k]+int64(i/len(p.frames))*span, p.wire[k])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

func BenchmarkDecode(b *testing.B) {
	p := mixPackets(b, benchN)
	d := NewDecoder(layers.LinkTypeEthernet)
	var m Meta
	p.run(b, func(data []byte, _ int64, _ int) { d.Decode(data, &m) })
}

func BenchmarkDecodeGeneralPath(b *testing.B) {
	p := mixPackets(b, benchN)
	d := NewDecoder(layers.LinkTypeEthernet)
	var m Meta
	p.run(b, func(data []byte, _ int64, _ int) { d.DecodeGeneral(data, &m) })
}

// BenchmarkDecodeTable is decode + key + table update with idle expiry.
func BenchmarkDecodeTable(b *testing.B) {
	p := mixPackets(b, benchN)
	d := NewDecoder(layers.LinkTypeEthernet)
	t := NewTable(TableConfig{MaxFlows: 1 << 20, IdleTimeout: 60 * time.Second})
	var m Meta
	p.run(b, func(data []byte, ts int64, wire int) {
		if d.Decode(data, &m) {
			t.Update(&m, ts, wire)
		}
	})
}

// BenchmarkMeter is the whole pipeline: decode, table, features, intervals.
func BenchmarkMeter(b *testing.B) {
	p := mixPackets(b, benchN)
	mt := NewMeter(MeterConfig{Name: "bench", Table: TableConfig{MaxFlows: 1 << 20, IdleTimeout: 60 * time.Second}},
		layers.LinkTypeEthernet, slog.New(slog.DiscardHandler), nil)
	p.run(b, mt.Packet)
}
