package flow

import (
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

// FuzzDecode feeds arbitrary bytes to the Ethernet and raw-IP decoders. A
// packet either decodes or is counted under exactly one reason; the fast
// path, when it accepts a packet, agrees with gopacket's general path; and
// the flow table takes whatever the decoder produced.
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases() {
		f.Add(frame(c.f))
	}
	f.Add(frame(synth.Frame{VLANs: []uint16{1, 2, 3}, Src: v4a, Dst: v4b, Proto: 6}))
	f.Add([]byte{})
	eth := NewDecoder(layers.LinkTypeEthernet)
	raw := NewDecoder(layers.LinkTypeRaw)
	tab := NewTable(TableConfig{MaxFlows: 64})
	var ts int64 = 1e18
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []*Decoder{eth, raw} {
			before := d.Stats
			var m, g Meta
			ok := d.Decode(data, &m)
			decoded := d.Stats.Fast + d.Stats.General - before.Fast - before.General
			bad := d.Stats.BadTotal() - before.BadTotal()
			if ok && (decoded != 1 || bad != 0) || !ok && (decoded != 0 || bad != 1) {
				t.Fatalf("ok=%v decoded=%d bad=%d", ok, decoded, bad)
			}
			if d.DecodeFast(data, &m) {
				if r := d.DecodeGeneral(data, &g); r != ReasonNone || g != m {
					t.Fatalf("fast path %+v, general path %v %+v", m, r, g)
				}
			}
			if ok {
				ts += 1e8
				tab.Update(&m, ts, len(data))
			}
		}
	})
}

// FuzzCompileFilter feeds arbitrary expressions to the filter compiler: it
// either rejects them with an error or yields a program the BPF VM accepts
// and runs on every sample frame.
func FuzzCompileFilter(f *testing.F) {
	for _, e := range filterExprs {
		f.Add(e)
	}
	f.Add("not (tcp or udp) and (src net fd00::/8 or dst portrange 1-2)")
	f.Fuzz(func(t *testing.T, expr string) {
		raw, err := CompileFilter(expr, 96)
		if err != nil {
			return
		}
		for _, data := range filterFrames {
			runFilter(t, raw, data)
		}
	})
}
